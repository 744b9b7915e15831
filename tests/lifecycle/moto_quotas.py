"""moto_server with EC2's On-Demand vCPU quotas, which moto 5.2 lacks (its Service Quotas
serves only VPC's defaults): ``python -m tests.lifecycle.moto_quotas -H HOST -p PORT``.

This emulates AWS itself and nothing of mmload: ``GetServiceQuota`` for service ``ec2`` answers
the value the JSON file named by ``$MMLOAD_TEST_EC2_QUOTAS`` gives for the quota code (read on
every request, so a test can change the account's applied quota), as AWS answers the account's
quota; any other request goes to moto unchanged.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from moto.servicequotas import models

QUOTAS_ENV = "MMLOAD_TEST_EC2_QUOTAS"
_moto_get = models.ServiceQuotasBackend.get_service_quota


def get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
    if service_code == "ec2":
        path = os.environ.get(QUOTAS_ENV)
        values = json.loads(Path(path).read_text()) if path and os.path.exists(path) else {}
        if quota_code in values:
            return {
                "ServiceCode": "ec2",
                "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaArn": f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:"
                f"ec2/{quota_code}",
                "QuotaCode": quota_code,
                "QuotaName": f"vCPU quota {quota_code}",
                "Value": float(values[quota_code]),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
    return _moto_get(self, service_code, quota_code)


def command() -> list[str]:
    """The argv prefix that starts this server (for ``MotoServer(command=...)``)."""
    return [sys.executable, "-m", "tests.lifecycle.moto_quotas"]


if __name__ == "__main__":
    models.ServiceQuotasBackend.get_service_quota = get_service_quota
    from moto.server import main

    main(sys.argv[1:])
