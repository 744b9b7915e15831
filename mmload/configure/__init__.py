"""Configuration stage: the inventory built from outputs.json and the ansible-runner driver."""
