"""Where the cells of a grid run: in this process, in local worker processes, or as Ray tasks.

Each executor yields (spec, CellResult, "") as cells finish, or (spec, None, reason) when a worker
was lost; the driver records results, so workers never touch the CSV files and a lost worker can
neither tear nor duplicate a row.

run(cells, data_root, device, on_epoch): cells is a deque that the driver may extend while the executor
runs (between two results it yields: a tuning asks a model's next trial as soon as its last one is scored)
and reorder, so an executor takes a cell from its front only when a worker is free to start it, and ends
when the deque is empty and nothing runs.
on_epoch (None: no progress) is the driver's callback for
each running cell's EpochProgress. The serial executor hands it to the cell directly; the parallel ones
give their workers a queue (a multiprocessing Manager's, a Ray queue) and, while they wait for results,
drain it into on_epoch every POLL_SECONDS, before handing on the results that have arrived, so that a
cell's epochs are always shown before its result.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.managers import SyncManager

from aebench.errors import UserError
from aebench.plumbing.progress import QueueReporter, drain, end_with_parent
from aebench.plumbing.provenance import PROJECT_ROOT
from aebench.run.cell import run_in_worker

POLL_SECONDS = 1.0  # how often the driver shows the workers' progress while it waits for results


class SerialExecutor:
    """One cell after another, in this process (the default)."""

    parallelism = 1

    def run(self, cells, data_root, device, on_epoch=None):
        while cells:
            spec = cells.popleft()
            yield spec, run_in_worker(spec, data_root, device, on_epoch=on_epoch), ""


class ProcessExecutor:
    """N cells at once, each in its own process with an equal share of the CPU threads."""

    def __init__(self, jobs: int, threads: int | None = None):
        if jobs < 1:
            raise UserError(f"--jobs {jobs}: must be >= 1")
        self.parallelism = jobs
        self.threads = threads or max(1, (os.cpu_count() or 1) // jobs)

    def run(self, cells, data_root, device, on_epoch=None):
        # spawn, not fork: forking a process whose torch thread pools already run can deadlock
        # each call of run_in_worker limits its process's thread pools to self.threads
        spawn = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.parallelism, mp_context=spawn)
        futures, manager, queue = {}, None, None
        try:
            if on_epoch is not None and cells:  # the workers' progress travels through a Manager's queue (picklable)
                manager = SyncManager(ctx=spawn)
                manager.start(end_with_parent)
                queue = manager.Queue()
            report = QueueReporter(queue) if queue is not None else None
            while cells or futures:
                broken = []
                while cells and len(futures) < self.parallelism:  # the rest wait in the driver's order
                    spec = cells.popleft()
                    try:
                        futures[pool.submit(run_in_worker, spec, data_root, device, self.threads, report)] = spec
                    except BrokenProcessPool:  # a worker died earlier: the pool takes nothing more
                        broken.append(spec)
                for spec in broken:
                    yield spec, None, "a worker process died"
                if not futures:
                    continue
                done, _ = wait(futures, timeout=POLL_SECONDS if queue is not None else None,
                               return_when=FIRST_COMPLETED)
                if queue is not None:
                    drain(queue, on_epoch)
                for future in done:
                    spec = futures.pop(future)
                    try:
                        yield spec, future.result(), ""
                    except BrokenProcessPool:
                        yield spec, None, "a worker process died"
        finally:
            _stop(pool)
            if manager is not None:
                manager.shutdown()


TERMINATE_GRACE_SECONDS = 5.0


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (used on Ctrl-C / SIGTERM too)."""
    # No public API lists the workers, and shutdown() forgets them (sets _processes to None): take
    # them first, or a worker in a long run would go on to its end and hold the exiting driver.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.terminate()
    # A worker that outlives SIGTERM (a C call that defers it) is killed. The CI failures that first
    # suggested this were not live workers: the pool's manager thread had reaped them, and is_alive()
    # on our handle says True until that thread records the exit (tests/test_parallel.py asks the OS).
    for process in workers:
        process.join(timeout=TERMINATE_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(timeout=TERMINATE_GRACE_SECONDS)


class RayExecutor:
    """Each cell is a Ray task; without an address Ray starts on this machine."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install -e \".[ray]\"") from None
        if cpus_per_run <= 0 or gpus_per_run < 0:
            raise UserError("--ray-cpus-per-run must be > 0 and --ray-gpus-per-run >= 0")
        self.ray, self.address = ray, address
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.parallelism = 1

    def _connect(self) -> bool:
        """Start or join Ray; True when we started it (and so must stop it)."""
        if self.ray.is_initialized():
            return False
        # a local Ray's workers must import this checkout even when it is not pip-installed
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}}
        try:
            self.ray.init(address=self.address, runtime_env=None if self.address else env, include_dashboard=False,
                          log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot start or reach Ray at {self.address or 'a new local instance'}: {e}") from None
        return True

    def run(self, cells, data_root, device, on_epoch=None):
        started_ray = self._connect()
        cpus = self.ray.cluster_resources().get("CPU", 1)
        self.parallelism = max(1, int(cpus // self.cpus_per_run))
        task = self.ray.remote(run_in_worker).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=0)
        device = "cuda" if self.gpus_per_run > 0 else device
        threads = max(1, int(self.cpus_per_run))
        refs, queue = {}, None
        try:
            if on_epoch is not None and cells:  # an actor, so tasks on any node of a cluster reach it; it holds no CPU
                from ray.util.queue import Queue

                queue = Queue(actor_options={"num_cpus": 0})
            report = QueueReporter(queue) if queue is not None else None
            while cells or refs:
                while cells and len(refs) < self.parallelism:  # the rest wait in the driver's order
                    spec = cells.popleft()
                    refs[task.remote(spec, data_root, device, threads, report)] = spec
                ready, _ = self.ray.wait(list(refs), num_returns=1, timeout=POLL_SECONDS if queue is not None else None)
                if queue is not None:
                    drain(queue, on_epoch)
                for ref in ready:
                    spec = refs.pop(ref)
                    try:
                        yield spec, self.ray.get(ref), ""
                    except self.ray.exceptions.RayError as e:
                        yield spec, None, f"Ray task lost: {type(e).__name__}"
        finally:
            for ref in refs:
                self.ray.cancel(ref, force=True)
            if queue is not None:
                try:
                    queue.shutdown()
                except Exception:  # Ray going down already: the queue goes with it
                    pass
            if started_ray:
                self.ray.shutdown()


def make_executor(kind: str, jobs: int = 1, ray_address: str | None = None,
                  ray_cpus_per_run: float = 1, ray_gpus_per_run: float = 0):
    if kind == "local":
        return SerialExecutor() if jobs == 1 else ProcessExecutor(jobs)
    if kind == "ray":
        return RayExecutor(ray_address, ray_cpus_per_run, ray_gpus_per_run)
    raise UserError(f"unknown executor '{kind}'; choices: local, ray")
