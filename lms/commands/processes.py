"""The long-running processes besides gunicorn: `lms worker` (its life is in lms.worker) and
`lms labs` (the lab hub)."""

from __future__ import annotations

from pathlib import Path

import click

from lms.commands import fail, lms


@lms.command("worker")
@click.option("--workers", type=click.IntRange(min=1), help="Processes (default LMS_WORKERS).")
@click.option(
    "--lanes",
    help="cpu, gpu or cpu,gpu (default LMS_WORKER_LANES, else cpu plus gpu where LMS_GPU_SLOTS"
    " is set). The gpu lane runs a process per GPU slot.",
)
def worker_command(workers: int | None, lanes: str | None) -> None:
    """Run the queue consumer: grading (instant feedback first), mail, invitations, exports."""
    from flask import current_app

    from lms import worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        taken = worker.lanes_of(app, lanes)
    except ValueError as e:
        fail(str(e))
    worker.serve(app, workers or int(app.config["WORKERS"]), taken, say=click.echo)


@lms.command("hub")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where browsers connect.")
@click.option("--port", default=8000, show_default=True, help="Where browsers connect.")
@click.option(
    "--lms-url",
    default="http://127.0.0.1:8001",
    show_default=True,
    help="The LMS (gunicorn): every path but /hub/ and /user/ goes there.",
)
@click.option("--hub-port", default=8081, show_default=True, help="JupyterHub's own (private).")
@click.option(
    "--proxy-api-port", default=8082, show_default=True, help="The proxy's API (private)."
)
def hub_command(host: str, port: int, lms_url: str, hub_port: int, proxy_api_port: int) -> None:
    """Run JupyterHub, the lab engine, as the site's entry point (lms.lab.jupyterhub_config),
    its lab servers' kernels from the kernel service (`flask lms labs`, LMS_LAB_HUB_URL). It
    gets tokens derived for it, never the LMS's secret key or database URL."""
    import os
    import sys

    from flask import current_app

    from lms.lab import hub_token, jupyterhub_service_token, lab_identity_token
    from lms.storage import storage

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    secret = str(app.config["SECRET_KEY"])
    root = Path(app.root_path).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMS_")}
    env.update(
        PYTHONPATH=str(root),
        LMSHUB_IP=host,
        LMSHUB_PORT=str(port),
        LMSHUB_HUB_PORT=str(hub_port),
        LMSHUB_PROXY_API_PORT=str(proxy_api_port),
        LMSHUB_LMS_URL=lms_url,
        LMSHUB_STATE_DIR=str(Path(app.instance_path) / "jupyterhub"),
        LMSHUB_SERVICE_TOKEN=jupyterhub_service_token(secret),
        LMSHUB_IDENTITY_TOKEN=lab_identity_token(secret),
        LMSHUB_SESSION_COOKIE=str(app.config.get("SESSION_COOKIE_NAME") or "session"),
        LMSHUB_IDLE_SECONDS=str(float(app.config["LAB_IDLE_MINUTES"]) * 60),
        LMSHUB_DATA_DIR=str(storage().local_folder("workspaces").parent),
        LMSHUB_KERNELS_URL=str(app.config["LAB_HUB_URL"]),
        LMSHUB_KERNELS_TOKEN=hub_token(secret),
        LMSHUB_SANDBOX=str(app.config["SANDBOX"]),
        LMSHUB_KERNEL_RELEASE_SECONDS=str(float(app.config["LAB_KERNEL_RELEASE_SECONDS"])),
    )
    jupyterhub = Path(sys.executable).parent / "jupyterhub"
    config = root / "lms" / "lab" / "jupyterhub_config.py"
    os.execve(jupyterhub, [str(jupyterhub), "-f", str(config)], env)


@lms.command("labs")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where browsers connect.")
@click.option("--port", default=8000, show_default=True, help="Where browsers connect.")
@click.option(
    "--lms-url",
    default="http://127.0.0.1:8001",
    show_default=True,
    help="The LMS (gunicorn) that serves every path but the labs.",
)
@click.option(
    "--api-host",
    default="127.0.0.1",
    show_default=True,
    help="Where the LMS and lab servers reach the hub's API (port from LMS_LAB_HUB_URL).",
)
def labs_command(host: str, port: int, lms_url: str, api_host: str) -> None:
    """Run the lab hub: the site's entry point (a proxy to the LMS and the learners' lab
    servers), the lab servers themselves and their pool of sandboxed kernels."""
    import asyncio
    import logging
    import signal
    from urllib.parse import urlsplit

    from flask import current_app

    from autograder.gpu import GpuSlots
    from autograder.pool import KernelPool
    from autograder.sandbox import SandboxPolicy, SandboxUnavailable
    from lms.lab import capacity
    from lms.lab.hub import CPU, GPU, LabHub, Settings, make_proxy, serve
    from lms.services.labs import DatabaseRecorder, session_owner
    from lms.storage import storage

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    kernels = int(config["LAB_KERNELS"]) or capacity.lab_kernels()
    servers = int(config["LAB_SERVERS"]) or capacity.lab_servers(kernels)
    click.echo(
        f"Labs: {kernels} kernels, {servers} lab servers at most"
        f" ({capacity.cores()} cores, {capacity.memory_bytes() / 2**30:.1f} GiB;"
        " LMS_LAB_KERNELS and LMS_LAB_SERVERS override)"
    )
    settings = Settings(
        secret_key=str(config["SECRET_KEY"]),
        data_dir=storage().local_folder("workspaces").parent,
        session_cookie=str(config.get("SESSION_COOKIE_NAME") or "session"),
        session_max_age=int(app.permanent_session_lifetime.total_seconds()),
        session_owner=session_owner(app),
        trusted_proxies=max(1, int(config["TRUSTED_PROXIES"])),
        sandbox=str(config["SANDBOX"]),
        max_servers=servers,
        kernels=kernels,
        kernels_per_learner=int(config["LAB_KERNELS_PER_LEARNER"]),
        idle_seconds=float(config["LAB_IDLE_MINUTES"]) * 60,
        gpu_idle_seconds=float(config["LAB_GPU_IDLE_MINUTES"]) * 60,
        kernel_release_seconds=float(config["LAB_KERNEL_RELEASE_SECONDS"]),
        gateway_url=str(config["KERNEL_GATEWAY_URL"]),
        gateway_token=str(config["KERNEL_GATEWAY_TOKEN"]),
    )
    shortest = min(settings.idle_seconds, settings.gpu_idle_seconds)
    settings.cull_every_seconds = max(1.0, min(60.0, shortest / 6))
    recorder = DatabaseRecorder(app)
    recorder.all_stopped("hub restarted")
    pools: dict[str, KernelPool] = {}
    if not settings.gateway_url:
        slots = GpuSlots.parse(str(config["GPU_SLOTS"]), Path(config["GPU_DEVICE_ROOT"]))
        mode = str(config["SANDBOX"])
        preload = [m.strip() for m in str(config["LAB_PRELOAD"]).split(",") if m.strip()]
        try:
            pools[CPU] = KernelPool(
                settings.kernels,
                SandboxPolicy(mode=mode),
                preload=preload,
                folder="lab",
                unset_env=("NBGRADER_EXECUTION",),  # a lab is not an autograder run
                guard=False,  # labs are not graded
            )
            if slots.available:  # one sandbox per slot, with only that slot's device files
                pools[GPU] = KernelPool(
                    len(slots.devices),
                    SandboxPolicy(mode=mode),
                    preload=preload,
                    gpu=True,
                    gpu_slots=slots,
                    folder="lab",
                    unset_env=("NBGRADER_EXECUTION",),
                    guard=False,
                )
        except SandboxUnavailable as e:
            for pool in pools.values():
                pool.close()
            fail(str(e))
    api_port = urlsplit(str(config["LAB_HUB_URL"])).port or 8091
    hub = LabHub(settings, pools, recorder, None, api_port, api_host)
    hub.proxy = make_proxy(lms_url, hub)
    click.echo(f"Lab hub: http://{host}:{port}/ (LMS at {lms_url}, API on {api_port})")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        await serve(hub, (host, port), stop)

    try:
        asyncio.run(main())
    finally:
        for pool in pools.values():
            pool.close()
