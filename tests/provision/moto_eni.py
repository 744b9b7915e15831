"""moto_server that detaches an instance's own network interfaces when it terminates, as AWS
does: ``python -m tests.provision.moto_eni -H HOST -p PORT``.

moto 5.2 keeps an interface made before its instance (attached at launch as device 0, not
deleted on termination) attached to the terminated instance, and then refuses to detach it
(``OperationNotPermitted``: device index 0), so a destroy can never delete it. AWS detaches it
at termination (it becomes ``available``). This emulates AWS's side only; any request goes to
moto unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

from moto.ec2.models.instances import Instance

_moto_terminate = Instance.terminate


def terminate(self: Any) -> Any:
    state = _moto_terminate(self)
    for nic in self.nics.values():  # the terminated instance still lists it (DescribeInstances)
        if not nic.delete_on_termination:
            nic.instance = nic.attachment_id = nic.attach_time = nic.device_index = None
            nic.status = "available"
    return state


def command() -> list[str]:
    """The argv prefix that starts this server (for ``MotoServer(command=...)``)."""
    return [sys.executable, "-m", "tests.provision.moto_eni"]


if __name__ == "__main__":
    Instance.terminate = terminate  # type: ignore[method-assign]
    from moto.server import main

    main(sys.argv[1:])
