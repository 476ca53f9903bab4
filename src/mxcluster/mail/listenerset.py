"""All listeners of the machine, kept in line with the configuration snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mxcluster.mail.listeners import ListenerPlan, ListenerRuntime, RuntimeFactory
from mxcluster.mail.snapshot import MailSnapshot, MailTunables

#: Seconds sessions on a removed or redefined listener get before they are cut.
RETIRE_DELAY = 30.0


def plan_listeners(snapshot: MailSnapshot, tunables: MailTunables) -> list[ListenerPlan]:
    """The runtime plan of each configured listener (pure)."""
    return [_plan(snapshot, spec, tunables) for spec in snapshot.listeners]


def _plan(snapshot: MailSnapshot, spec: Any, tunables: MailTunables) -> ListenerPlan:
    iface = snapshot.interface(spec.interface)
    cert = snapshot.certificate(spec.certificate) if spec.tls != "off" else None
    reason = None
    if iface is None:
        reason = f"interface {spec.interface!r} is not configured on this machine"
    elif spec.tls != "off" and cert is None:
        reason = f"TLS certificate {spec.certificate or '(default)'!r} does not exist"
    return ListenerPlan(
        spec=spec, ip=iface.ip if iface else None,
        hostname=(iface.hostname if iface and iface.hostname else snapshot.hostname),
        cert_pem=cert.certificate if cert else None, key_pem=cert.key if cert else None,
        disabled_reason=reason, idle_timeout=tunables.idle_timeout,
        session_timeout=tunables.session_timeout,
    )


class ListenerSet:
    """One runtime per configured listener; unchanged listeners are left alone."""

    def __init__(self, build: RuntimeFactory, is_suspended: Callable[[str], bool]) -> None:
        self._build = build
        self._is_suspended = is_suspended
        self.runtimes: dict[str, ListenerRuntime] = {}
        self._retired: list[ListenerRuntime] = []

    async def apply(self, plans: Iterable[ListenerPlan]) -> None:
        """Make the running listeners match PLANS, without touching unchanged ones."""
        wanted = {p.spec.name: p for p in plans}
        for name in [n for n in self.runtimes if n not in wanted]:
            self._retire(self.runtimes.pop(name))
        for name, plan in wanted.items():
            old = self.runtimes.get(name)
            if old is not None and old.plan == plan:
                continue
            if old is not None:
                self._retire(old)
            runtime = self.runtimes[name] = self._build(plan)
            if not self._is_suspended(name):
                await runtime.open()

    def _retire(self, runtime: ListenerRuntime) -> None:
        runtime.close(delay=RETIRE_DELAY)
        self._retired = [r for r in self._retired if r.sessions]
        self._retired.append(runtime)

    def select(self, name: str | None) -> list[ListenerRuntime]:
        """The runtime called NAME, or all of them for None."""
        if name is None:
            return list(self.runtimes.values())
        runtime = self.runtimes.get(name)
        return [runtime] if runtime is not None else []

    def suspend(self, name: str | None, delay: float) -> None:
        """Stop accepting at once; cut sessions after DELAY seconds."""
        for runtime in self.select(name):
            runtime.close(delay=delay)

    async def resume(self, name: str | None) -> None:
        """Accept connections again."""
        for runtime in self.select(name):
            await runtime.open()

    def close_all(self) -> None:
        """Stop listening and cut every session now (engine shutdown)."""
        for runtime in [*self.runtimes.values(), *self._retired]:
            runtime.close()
            runtime.cut_all()

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.runtimes.values()]
