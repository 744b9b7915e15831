"""An emulated download site on 127.0.0.1 for the roles' tarballs.

The real sites (releases.mattermost.com, GitHub releases, dl.grafana.com) cannot be reached from
the test machines, so the tests build small stand-in tarballs with the same layout and file
names, publish real sha256 checksums the same way those sites do, and serve them over HTTP.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MM_VERSION = "10.11.12"
NODE_EXPORTER_VERSION = "1.8.2"
GRAFANA_VERSION = "11.3.0"

SCRIPT = "#!/bin/sh\n# stand-in for {name} (mmload tests)\necho '{name} stand-in'\n"
# mmctl's local-mode import, as far as the role uses it, on a two-node cluster: `import upload`
# puts the zip into the server's file store (`filestore/import/<upload id>_<name>`, S3 on a
# deployment, seen by every node), `import list available` lists it, `import process NAME`
# starts a job that finds it there (`job show` says success). `--bypass-upload` with a path on
# this node's disk starts a job that the other node claims, and fails there: the file is not on
# its disk (issue 12 item 4). Every call is logged next to the binary.
MMCTL = """#!/bin/sh
# stand-in for mmctl (mmload tests)
here="$(dirname "$0")/.."
echo "$MMCTL_LOCAL_SOCKET_PATH $*" >> "$here/mmctl-calls.log"
store="$here/filestore/import"
case "$*" in
  "--local import list available")
    ls "$store" 2>/dev/null | grep . || echo "No import files found" ;;
  "--local import upload "*)
    mkdir -p "$store" && cp "$4" "$store/u1x2y3z4a5b6c7d8e9f0g1h2i3_$(basename "$4")" || exit 1
    echo "Upload session successfully created, ID: u1x2y3z4a5b6c7d8e9f0g1h2i3"
    echo "Import file successfully uploaded, name: u1x2y3z4a5b6c7d8e9f0g1h2i3" ;;
  *"import process --bypass-upload"*)
    echo '{"id": "job1", "type": "import_process", "status": "pending"}' ;;
  "--local import process "*)
    [ -f "$store/$4" ] || { echo "Error: import file $4 not found" >&2; exit 1; }
    echo '{"id": "job2", "type": "import_process", "status": "pending"}' ;;
  *"import job show job1"*)
    echo '{"id": "job1", "status": "error", "data": {"error": "app-1: no such import file"}}' ;;
  *"import job show job2"*) echo '{"id": "job2", "type": "import_process", "status": "success"}' ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tarball(path: Path, files: dict[str, str]) -> Path:
    """A .tar.gz with ``files`` (name → text); names ending in a bin path are executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # gzip header mtime 0: the same files give the same bytes (and checksum) on every build.
    with gzip.GzipFile(path, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if "/bin/" in name or name.endswith("node_exporter") else 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class FakeSite:
    """The served folder, its base URL, and the role variables that point at it."""

    root: Path
    base_url: str = ""
    server: ThreadingHTTPServer | None = None
    checksums: dict[str, str] = field(default_factory=dict)

    def build(self) -> None:
        mm = self.root / "mattermost" / MM_VERSION / f"mattermost-{MM_VERSION}-linux-amd64.tar.gz"
        make_tarball(
            mm,
            {
                "mattermost/bin/mattermost": SCRIPT.format(name="mattermost"),
                "mattermost/bin/mmctl": MMCTL,
                "mattermost/client/root.html": "<html></html>\n",
                "mattermost/fonts/README": "fonts\n",
            },
        )
        self.checksums["mattermost"] = sha256(mm)

        ne_dir = self.root / "node_exporter" / f"v{NODE_EXPORTER_VERSION}"
        ne_name = f"node_exporter-{NODE_EXPORTER_VERSION}.linux-amd64"
        ne = make_tarball(
            ne_dir / f"{ne_name}.tar.gz",
            {
                f"{ne_name}/node_exporter": SCRIPT.format(name="node_exporter"),
                f"{ne_name}/LICENSE": "Apache-2.0\n",
            },
        )
        other = make_tarball(
            ne_dir / f"node_exporter-{NODE_EXPORTER_VERSION}.linux-arm64.tar.gz",
            {"x/node_exporter": "arm\n"},
        )
        # GitHub's sha256sums.txt lists every asset of the release: the role must pick its line.
        (ne_dir / "sha256sums.txt").write_text(
            f"{sha256(other)}  {other.name}\n{sha256(ne)}  {ne.name}\n"
        )

        gf_dir = self.root / "grafana"
        gf = make_tarball(
            gf_dir / f"grafana-{GRAFANA_VERSION}.linux-amd64.tar.gz",
            {
                f"grafana-v{GRAFANA_VERSION}/bin/grafana": SCRIPT.format(name="grafana"),
                f"grafana-v{GRAFANA_VERSION}/conf/defaults.ini": "[server]\n",
            },
        )
        # dl.grafana.com publishes a .sha256 file holding just the digest.
        (gf_dir / f"{gf.name}.sha256").write_text(sha256(gf) + "\n")

    def start(self) -> FakeSite:
        self.build()
        handler = partial(_QuietHandler, directory=str(self.root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def role_vars(self) -> dict[str, str]:
        """Variables that point the roles at this site instead of the real ones."""
        b = self.base_url
        ne = f"{b}/node_exporter/v{NODE_EXPORTER_VERSION}"
        return {
            "common_node_exporter_version": NODE_EXPORTER_VERSION,
            "common_node_exporter_url": (
                f"{ne}/node_exporter-{NODE_EXPORTER_VERSION}.linux-amd64.tar.gz"
            ),
            "common_node_exporter_checksum": f"sha256:{ne}/sha256sums.txt",
            "metrics_grafana_version": GRAFANA_VERSION,
            "metrics_grafana_url": f"{b}/grafana/grafana-{GRAFANA_VERSION}.linux-amd64.tar.gz",
            "mattermost_version": MM_VERSION,
            "mattermost_download_url": (
                f"{b}/mattermost/{MM_VERSION}/mattermost-{MM_VERSION}-linux-amd64.tar.gz"
            ),
            "mattermost_sha256": self.checksums["mattermost"],
        }
