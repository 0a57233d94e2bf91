"""The Dockerfile: its shape, and its build stage's install steps run for real in a clean virtualenv.

No image can be built here (no container engine), so the build stage's RUN steps run as
they are written, with the stage's ENV and the files its COPY lines take, in a temporary
folder with VENV pointed at a temporary virtualenv. The `llmgw` they give must run:
`--version`, `render config/samples`, and the import of the whole operator.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import llmgw

from .conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage:
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_two_stages_on_one_pinned_slim_python() -> None:
    args = dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    build, final = stages()
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")


def test_final_image_is_the_virtualenv_only_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    words = [w for w, _ in final]
    assert "RUN" not in words, "nothing is installed in the final stage"
    copies = [rest for w, rest in final if w == "COPY"]
    assert copies == ["--from=build /opt/llmgw /opt/llmgw"]
    (user,) = [rest for w, rest in final if w == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert gid.isdigit()
    (entrypoint,) = [rest for w, rest in final if w == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["llmgw", "run"]
    env = env_of(final)
    assert env["PYTHONSAFEPATH"] == "1"
    assert env["PATH"].startswith("/opt/llmgw/bin:")


def test_chart_runs_the_image_as_its_user() -> None:
    import yaml

    values = yaml.safe_load((ROOT / "charts" / "llmgw" / "values.yaml").read_text())
    (user,) = [rest for w, rest in stages()[-1] if w == "USER"]
    assert user == f"{values['securityContext']['runAsUser']}:{values['securityContext']['runAsGroup']}"


def test_dockerignore_lets_in_what_the_build_copies() -> None:
    lines = [
        x.strip() for x in (ROOT / ".dockerignore").read_text().splitlines() if x.strip() and x[0] != "#"
    ]
    assert lines[0] == "*"
    allowed = {x[1:].rstrip("/") for x in lines if x.startswith("!")}
    for word, rest in stages()[0]:
        if word == "COPY":
            *sources, _dest = rest.split()
            assert set(sources) <= allowed, sources


def test_uv_in_the_image_is_the_tested_uv() -> None:
    (pin,) = re.findall(r"uv==([0-9.]+)", DOCKERFILE.read_text())
    assert pin == importlib.metadata.version("uv")


def test_install_steps_give_a_working_llmgw(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:  # pragma: no cover - uv is in the test extra
        pytest.fail("uv is missing from the test environment: pip install -e '.[test]'")
    build = stages()[0]
    src = tmp_path / "src"
    src.mkdir()
    for word, rest in build:
        if word == "COPY":
            *sources, _dest = rest.split()
            for s in sources:
                origin = ROOT / s
                if origin.is_dir():
                    shutil.copytree(
                        origin, src / s, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
                    )
                else:
                    shutil.copy2(origin, src / s)
    venv = tmp_path / "venv"
    env = {
        "PATH": f"{Path(uv).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        **{k: v for k, v in os.environ.items() if k.startswith(("SSL_", "REQUESTS_CA", "UV_INDEX", "PIP_"))},
        **env_of(build),
        "VENV": str(venv),
        # The two liberties taken, for time: uv keeps its download cache between runs (in
        # .tools/), and compiles no bytecode (the image does; the import below checks it all).
        "UV_CACHE_DIR": str(ROOT / ".tools" / "uv-cache"),
    }
    env.pop("UV_NO_CACHE", None)
    env.pop("UV_COMPILE_BYTECODE", None)
    env.pop("PYTHONPATH", None)
    for word, rest in build:
        if word != "RUN":
            continue
        if rest.startswith("pip install") and "uv==" in rest:
            continue  # the image's uv; here, the same version from the test environment (checked above)
        done = subprocess.run(
            ["bash", "-c", rest], cwd=src, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, f"RUN {rest}\n{done.stdout}{done.stderr}"
    llmgw_bin = venv / "bin" / "llmgw"
    run_env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
        "PYTHONSAFEPATH": "1",
        "HOME": str(tmp_path),
    }
    version = subprocess.run(
        [str(llmgw_bin), "--version"],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert version.stdout.strip() == f"llmgw {llmgw.__version__}"
    rendered = subprocess.run(
        [str(llmgw_bin), "render", str(ROOT / "config" / "samples")],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "model_list" in rendered.stdout
    helped = subprocess.run(
        [str(llmgw_bin), "run", "--help"],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "--metrics-port" in helped.stdout
    tools = sorted(
        p.name for p in (venv / "bin").iterdir() if p.name.startswith(("pip", "easy_install", "wheel"))
    )
    assert tools == [], f"build tools in the image's virtualenv: {tools}"
