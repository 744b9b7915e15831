"""The Mattermost API v4 simulator behind `mmload sim`: the embedded default target."""
