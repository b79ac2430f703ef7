"""Hostile code through the real sandbox: each attack is contained, and the result says why.

Real Rust programs go through ``compile_and_test`` (the path generated tests take), shell
commands through ``run_sandboxed`` where a shell says it more simply. Limits are small so
each case takes seconds. A case that needs a layer this machine cannot enforce is skipped
with the self-test's reason (``tests/evaluate/layers.py``), the reason ``coursekit doctor``
shows; CI sets ``COURSEKIT_SANDBOX_REQUIRED=1`` so that there it fails instead.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from coursekit.evaluate.rust import (
    RustTestResult,
    compile_and_test,
)
from coursekit.evaluate.sandbox import SandboxLimits, SandboxResult, run_sandboxed
from tests.evaluate.layers import alive, require


def rust(rustc: Path, body: str, **options: object) -> RustTestResult:
    """Compile and run one ``#[test]`` whose body is ``body`` (3 s to run)."""
    source = f"#[test]\nfn hostile() {{\n{body}\n}}\n"
    return compile_and_test(source, rustc=rustc, timeout_s=3, **options)


def shell(script: str, directory: Path, *, readable: tuple[Path, ...] = (), **limits: object):
    return run_sandboxed(
        ["sh", "-c", script],
        directory=directory,
        limits=SandboxLimits(**limits),
        readable=readable,
    )


def marker() -> str:
    """A ``sleep`` argument no other process on this machine uses."""
    return f"{uuid.uuid4().int % 100_000 + 1000}.{uuid.uuid4().int % 1000:03d}"


def victim(tmp_path: Path) -> Path:
    """A host file the sandbox must not change: mode 0666 in a 0777 directory, so only the
    sandbox (not file permissions) can stop a write."""
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    outside.chmod(0o777)
    target = outside / "victim.txt"
    target.write_text("original\n")
    target.chmod(0o666)
    return target


def box(tmp_path: Path) -> Path:
    work = tmp_path / "box"
    work.mkdir()
    return work


def test_infinite_loop(rustc: Path) -> None:
    result = rust(rustc, "loop { std::hint::spin_loop(); }")
    assert result.compiled and not result.passed
    assert result.timed_out and "wall" in result.limits_hit
    assert 3 <= result.run_seconds < 10


def test_fork_bomb(rustc: Path) -> None:
    require("processes", "cleanup")
    sleep = marker()
    body = f'loop {{ let _ = std::process::Command::new("sleep").arg("{sleep}").spawn(); }}'
    result = rust(rustc, body)
    assert not result.passed and result.processes_limited
    assert "processes" in result.limits_hit
    assert not alive(f"sleep {sleep}")


def test_shell_fork_bomb(tmp_path: Path) -> None:
    require("processes", "cleanup")
    sleep = marker()
    result = shell(f"while :; do sleep {sleep} & done", tmp_path, wall_seconds=2, max_processes=16)
    assert result.processes_limited and "processes" in result.limits_hit
    assert result.exit_code != 0 and "fork" in result.output  # sh: Cannot fork
    assert not alive(f"sleep {sleep}")


def test_huge_allocation(rustc: Path) -> None:
    body = "let v = vec![7u8; 4 << 30]; assert_eq!(v[v.len() - 1], 7);"
    result = rust(rustc, body)
    assert not result.passed and "memory" in result.limits_hit
    assert "memory allocation of 4294967296 bytes failed" in result.output


def test_raising_its_own_rlimits_fails(rustc: Path) -> None:
    require("limits")
    body = """
    use std::io::Write;  // not println!: libtest would hold it back until the test ends
    #[repr(C)]
    struct Rlimit { cur: u64, max: u64 }
    extern "C" { fn setrlimit(resource: i32, limit: *const Rlimit) -> i32; }
    let unlimited = Rlimit { cur: u64::MAX, max: u64::MAX };
    for resource in [0, 1, 9] {  // RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_AS
        let code = unsafe { setrlimit(resource, &unlimited) };
        writeln!(std::io::stderr(), "setrlimit({resource}) -> {code}").unwrap();
    }
    let v = vec![7u8; 3 << 30];
    assert_eq!(v[v.len() - 1], 7);
    """
    result = rust(rustc, body)
    assert not result.passed and "memory" in result.limits_hit
    for resource in (0, 1, 9):
        assert f"setrlimit({resource}) -> -1" in result.output


def test_write_outside_the_sandbox(rustc: Path, tmp_path: Path) -> None:
    require("filesystem")
    target = victim(tmp_path)
    into_toolchain = rustc.parent.parent / f"coursekit-escape-{uuid.uuid4().hex}"
    body = f"""
    let victim = std::fs::write({str(target)!r}, "escaped");
    let created = std::fs::write({str(target.parent / "new.txt")!r}, "escaped");
    let toolchain = std::fs::write({str(into_toolchain)!r}, "escaped");
    println!("{{victim:?}} {{created:?}} {{toolchain:?}}");
    assert!(victim.is_ok() || created.is_ok() || toolchain.is_ok(), "every write failed");
    """
    result = rust(rustc, body.replace("'", '"'))
    assert result.compiled and not result.passed and result.filesystem_isolated
    assert "every write failed" in result.output
    assert target.read_text() == "original\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["victim.txt"]
    assert not into_toolchain.exists()


def test_remount_read_write_then_write(tmp_path: Path) -> None:
    require("filesystem", "unprivileged")
    target = victim(tmp_path)
    script = f"""
    for m in / $(awk '{{print $2}}' /proc/self/mounts); do mount -o remount,bind,rw "$m"; done
    mount -o remount,rw {target}
    unshare -Urm sh -c 'mount -o remount,bind,rw "$0"; echo nested >> "$0"' {target}
    echo escaped >> {target} && echo WROTE
    """
    result = shell(script, box(tmp_path), readable=(target,))
    assert "WROTE" not in result.output
    assert target.read_text() == "original\n"
    assert result.filesystem_isolated and result.unprivileged
    assert "mount" in result.output  # the attempts ran and were refused


def test_raising_pids_max_from_inside(tmp_path: Path) -> None:
    require("processes")
    sleep = marker()
    script = f"""
    cg=$(sed -n -e 's/^[0-9]*:pids://p' -e 's/^0:://p' /proc/self/cgroup | head -n1)
    for f in /sys/fs/cgroup/pids$cg/pids.max /sys/fs/cgroup$cg/pids.max; do echo max > $f; done
    mount -o remount,bind,rw /sys/fs/cgroup/pids
    mkdir cg && unshare -UrmC sh -c 'mount -t cgroup -o pids none cg && echo max > cg/pids.max'
    n=0; while [ $n -lt 40 ]; do sleep {sleep} & n=$((n+1)); echo "started $n"; done
    """
    result = shell(script, box(tmp_path), wall_seconds=5, max_processes=12)
    started = result.output.count("started ")
    assert 0 < started < 12, result.output
    assert result.processes_limited and "processes" in result.limits_hit
    assert not alive(f"sleep {sleep}")


def test_network_to_loopback(rustc: Path) -> None:
    require("network")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        body = f"""
        let stream = std::net::TcpStream::connect(("127.0.0.1", {port}));
        println!("connect: {{stream:?}}");
        stream.unwrap();
        """
        result = rust(rustc, body)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    assert result.compiled and not result.passed and result.network_isolated
    assert "connect: Err(" in result.output  # refused (bwrap: lo up) or unreachable (lo down)


def test_output_flood(rustc: Path) -> None:
    body = 'use std::io::Write;\nlet line = "x".repeat(100);\n'
    body += 'loop { writeln!(std::io::stdout(), "{line}").unwrap(); }'
    result = rust(rustc, body)
    assert not result.passed and "output" in result.limits_hit
    assert "bytes of output truncated" in result.output


def test_stack_overflow(rustc: Path) -> None:
    body = "fn down(n: u64) -> u64 { let pad = [n; 64]; down(pad[3] + 1) + pad[0] }\ndown(0);"
    result = rust(rustc, "#[allow(unconditional_recursion)]\n" + body)
    assert result.compiled and not result.passed
    assert "stack" in result.limits_hit and "has overflowed its stack" in result.output


def test_background_process_outlives_the_test(rustc: Path) -> None:
    require("cleanup")
    sleep = marker()
    body = f"""
    std::process::Command::new("setsid").args(["sleep", "{sleep}"]).spawn().unwrap();
    std::process::Command::new("sh").args(["-c", "nohup sleep {sleep} >/dev/null 2>&1 &"])
        .status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    """
    result = rust(rustc, body)
    assert result.passed  # the test itself succeeds: only the leftovers are hostile
    assert not alive(f"sleep {sleep}")


def test_compile_time_macro_bomb(rustc: Path) -> None:
    source = """
macro_rules! grow {
    (() $($t:tt)*) => { const _: usize = 0; };
    ((x $($n:tt)*) $($t:tt)*) => { grow!(($($n)*) $($t)* $($t)*); };
}
grow!((x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x x) 0);
"""
    result = compile_and_test(source, rustc=rustc, compile_memory_bytes=768 << 20)
    assert not result.compiled and not result.timed_out
    assert "memory" in result.limits_hit and "memory allocation of" in result.output
    assert result.compile_seconds < 30


def test_the_work_directory_is_given_back(tmp_path: Path) -> None:
    work = box(tmp_path)
    before = work.stat()
    result: SandboxResult = shell("echo made > made.txt; chmod 777 .", work)
    after = work.stat()
    assert result.exit_code == 0 and (work / "made.txt").read_text() == "made\n"
    assert (after.st_uid, after.st_gid, after.st_mode) == (
        before.st_uid,
        before.st_gid,
        before.st_mode,
    )
