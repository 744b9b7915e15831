"""mmload: load-test Mattermost in your own AWS account."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mmload")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
