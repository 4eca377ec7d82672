"""HTTP for portal runs: one requests session per run, with gmid's safety rules built in."""

from __future__ import annotations

DEFAULT_MAX_DOWNLOAD = 50 * 10**6


def read_body(response) -> bytes:
    """Read a (streamed) response body, refusing more than the session's download cap.

    The cap is the `gmid_max_download` attribute of the requests session that made the
    request (DEFAULT_MAX_DOWNLOAD when absent).
    """
    from gmid.errors import DownloadRejected

    session = getattr(response, "gmid_session", None)
    cap = getattr(session, "gmid_max_download", DEFAULT_MAX_DOWNLOAD)
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        response.close()
        raise DownloadRejected(f"{response.url}: {declared} bytes is over the {cap} byte cap")
    chunks, size = [], 0
    for chunk in response.iter_content(1 << 16):
        size += len(chunk)
        if size > cap:
            response.close()
            raise DownloadRejected(f"{response.url}: more than the {cap} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)
