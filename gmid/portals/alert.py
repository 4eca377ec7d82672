"""Tell a human that a portal waits for a code: a command of theirs, and apprise URLs.

The command runs with `/bin/sh -c` and reads the challenge from its environment (GMID_PORTAL,
GMID_KIND, GMID_PROMPT, GMID_MEDIUM, GMID_CHALLENGE_ID, GMID_EXPIRES, GMID_IMAGE for captchas,
GMID_PAGE_URL and GMID_WIDGET for captcha tokens).
The prompt is the portal's text: a command should quote "$GMID_PROMPT", never paste it into
code. Notifying never fails a run: problems are logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from typing import TYPE_CHECKING, Any

from gmid.config.portals import NotifyConfig

if TYPE_CHECKING:
    from gmid.portals.challenges.challenge import Challenge

logger = logging.getLogger(__name__)


class Notifier:
    """Calls the notify command and apprise for each new challenge; never raises."""

    def __init__(self, config: NotifyConfig):
        self.config = config
        self._apprise: Any = None
        if config.apprise:
            try:
                import apprise
            except ImportError:
                logger.warning(
                    "notify.apprise is set but the apprise package is not installed "
                    "(pip install 'gmid[notify]'): those notifications are not sent"
                )
            else:
                self._apprise = apprise.Apprise()
                for position, url in enumerate(config.apprise, 1):
                    # The URL may hold a token: name it only by its position.
                    if not self._apprise.add(url):
                        logger.warning("notify.apprise URL #%d is not one apprise knows", position)

    def __call__(self, challenge: Challenge) -> None:
        """Notify the user of one challenge; failures are logged, never raised."""
        if self.config.command:
            try:
                self._run_command(self.config.command, challenge)
            except Exception:
                logger.exception("notify command for %s failed", challenge.portal)
        if self._apprise is not None:
            try:
                self._send_apprise(challenge)
            except Exception:
                logger.exception("apprise notification for %s failed", challenge.portal)

    def _run_command(self, command: str, challenge: Challenge) -> None:
        """Run the command for a challenge, killing its process group after the timeout."""
        env = dict(os.environ)
        env.update(
            {
                key: value.replace("\0", "")  # a NUL byte cannot go into the environment
                for key, value in _environment(challenge).items()
            }
        )
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
        try:
            _, stderr = proc.communicate(timeout=self.config.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # A child that left the group may still hold stderr open: do not wait on it.
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
            logger.warning(
                "notify command for %s killed after %g s (challenge %s)",
                challenge.portal,
                self.config.timeout,
                challenge.id,
            )
            return
        if proc.returncode != 0:
            lines = stderr.decode(errors="replace").strip().splitlines()
            logger.warning(
                "notify command for %s failed with exit code %d%s",
                challenge.portal,
                proc.returncode,
                f": {lines[0]}" if lines else "",
            )

    def _send_apprise(self, challenge: Challenge) -> None:
        what = "a code" if challenge.kind == "code" else f"a {challenge.kind}"
        body = challenge.prompt
        if challenge.kind != "approval":
            body += f"\n\nAnswer with: gmid code {challenge.portal} ANSWER (or in gmid-tui)"
        if not self._apprise.notify(title=f"gmid: {challenge.portal} needs {what}", body=body):
            logger.warning("apprise could not deliver the notification for %s", challenge.portal)


def _environment(challenge: Challenge) -> dict[str, str]:
    """Return the GMID_* variables that describe a challenge to the notify command."""
    env = {
        "GMID_PORTAL": challenge.portal,
        "GMID_KIND": challenge.kind,
        "GMID_PROMPT": challenge.prompt,
        "GMID_MEDIUM": challenge.medium,
        "GMID_CHALLENGE_ID": challenge.id,
        "GMID_EXPIRES": challenge.expires_at.isoformat(),
    }
    if challenge.image_path:
        env["GMID_IMAGE"] = challenge.image_path
    if challenge.kind == "token":  # where to solve the check, and which widget it is
        env["GMID_PAGE_URL"] = challenge.page_url or ""
        env["GMID_WIDGET"] = challenge.widget or ""
    return env
