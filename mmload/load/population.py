"""The population's secret off the wire: a worker reads who logs in, with which password, from
its own file (mode 0600), never from the master's messages.

The master's plan carries the scenario without ``population.password`` and without a
customer's credentials (``population.accounts``, from ``run --credentials``: only their summary
travels, and each user is named in the record by its salted hash). Whoever starts a
worker puts the population beside it first: a local master in a private temporary folder
(``--population``), ``mmload load start`` on every agent over SSH, an operator by hand for
``mmload worker`` (``--population``, else ``$MMLOAD_POPULATION_FILE``, else
``~/.mmload/population.json``). A worker refuses a file that others may read, as ssh does.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from pydantic import ValidationError

from mmload.config.credentials import read_accounts
from mmload.config.scenario import Population, RunOptions, Scenario
from mmload.errors import RunFailed

POPULATION_ENV = "MMLOAD_POPULATION_FILE"
DEFAULT_FILE = "~/.mmload/population.json"
SECRET_FIELDS = {"password", "accounts"}


def default_path() -> Path:
    """Where a worker looks without ``--population``."""
    return Path(os.environ.get(POPULATION_ENV) or DEFAULT_FILE).expanduser()


def population_text(population: Population) -> str:
    """The file's content (JSON: the population with its password)."""
    return json.dumps(population.model_dump(mode="json"))


def write_population(path: Path, population: Population) -> None:
    """Write the population file, readable by its owner only (0600 from its creation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(population_text(population))


def read_population(path: Path) -> Population:
    """The population of a worker's file; RunFailed (one line) when it is missing, readable
    by others or not a population."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise RunFailed(f"{path}: the population file must be 0600 (it is {mode & 0o777:o})")
        return Population.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise RunFailed(f"no population file for this worker: {path}: {exc.strerror}") from None
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise RunFailed(f"{path}: not a population file: {first}") from None


def public_fields(population: Population) -> dict[str, object]:
    """What the plan may say about the population (everything but its password)."""
    return population.model_dump(mode="json", exclude=SECRET_FIELDS)


def with_credentials(scenario: Scenario, opts: RunOptions) -> Scenario:
    """The scenario with the customer's users of ``--credentials`` as its population (one
    credential per user index, wrapping); as it is without the flag. A bad file: UserError."""
    if not opts.credentials:
        return scenario
    accounts = read_accounts(opts.credentials, opts.credentials_salt_file)
    population = scenario.population.model_copy(
        update={
            "accounts": accounts,
            "accounts_summary": accounts.summary(),
            "size": len(accounts.credentials),
            "first_user": 1,
        }
    )
    return scenario.model_copy(update={"population": population})
