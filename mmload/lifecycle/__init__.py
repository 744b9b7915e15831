"""The lifecycle over the stages: `mmload up` (preflight, provision, configure, seed) resumable
from a state file in the deployment's working dir, `status`, `down`, `sweep`, and the remote
side (SSH through the jump host: `ssh`, `db`, detached jobs, copying folders back).

It calls the stages (provision, configure, sim's population); no stage imports it.
"""
