"""Tests for tools/install_detectron2.py that need no network and install nothing."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "install_detectron2.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("install_detectron2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


inst = _load_script()


@pytest.fixture(autouse=True)
def _never_touch_the_real_marker(tmp_path, monkeypatch):
    monkeypatch.setattr(inst, "marker_path", lambda: tmp_path / "env-marker.json")


# ------------------------------------------------------------------ stand-in _C


@pytest.fixture
def stand_in(tmp_path):
    path = tmp_path / "stand_in_c.py"
    path.write_text(inst.render_stand_in("0.6"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("d2timm_test_stand_in_c", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("op", ["nms_rotated", "deform_conv_forward", "COCOevalAccumulate"])
def test_stand_in_op_raises_import_error_naming_op_and_fix(stand_in, op):
    with pytest.raises(ImportError) as info:
        getattr(stand_in, op)
    message = str(info.value)
    assert f"detectron2._C.{op} is a compiled operator" in message
    assert "rotated boxes, deformable convolution, fast COCO evaluation" in message
    assert "detectron2 0.6 was installed from Python sources only" in message
    assert "make install D2_SOURCE=<git URL or checkout>" in message
    assert info.value.name == "detectron2._C"


def test_stand_in_from_import_raises_the_same_message(tmp_path, monkeypatch):
    package = tmp_path / "fake_d2"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "_C.py").write_text(inst.render_stand_in("0.6"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match=r"detectron2\._C\.box_iou_rotated is a compiled"):
        exec("from fake_d2._C import box_iou_rotated", {})
    for name in [n for n in sys.modules if n.startswith("fake_d2")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("name", ["__path__", "__wrapped__", "__all__", "_private"])
def test_stand_in_dunder_and_private_names_raise_attribute_error(stand_in, name):
    with pytest.raises(AttributeError):
        getattr(stand_in, name)
    assert not hasattr(stand_in, name)


def test_stand_in_keeps_module_machinery_and_introspection_working(stand_in):
    import inspect

    assert stand_in.__file__.endswith("stand_in_c.py")
    assert stand_in.__spec__ is not None
    assert not hasattr(stand_in, "__path__")  # a module, not a package
    assert inspect.ismodule(stand_in)
    assert inspect.getsource(stand_in).startswith('"""Stand-in')
    assert stand_in.IS_D2TIMM_STAND_IN is True


def test_stand_in_answers_collect_env_questions(stand_in):
    # detectron2.utils.collect_env calls these on a successfully imported _C.
    assert "stand-in" in stand_in.get_compiler_version()
    assert "stand-in" in stand_in.get_cuda_version()
    assert stand_in.has_cuda() is False


def test_rendered_setup_py_is_valid_python_with_the_layout():
    import ast

    text = inst.render_setup_py("0.6", dict(inst.FALLBACK_PROJECTS))
    ast.parse(text)
    assert 'name="detectron2"' in text and 'version="0.6"' in text
    assert '"configs/**/*.yaml"' in text and '"configs/**/*.py"' in text
    assert "detectron2.projects.point_rend" in text


# ----------------------------------------------------------------------- sources


def test_classify_git_urls():
    plain = "https://github.com/facebookresearch/detectron2.git"
    source = inst.classify_source(plain)
    assert (source.kind, source.spec, source.label) == ("git", "git+" + plain, plain)

    prefixed = "git+https://github.com/facebookresearch/detectron2.git@v0.6"
    assert inst.classify_source(prefixed) == inst.Source("git", prefixed, prefixed)

    tagged = "https://github.com/facebookresearch/detectron2.git@main"
    assert inst.classify_source(tagged).spec == "git+" + tagged
    assert inst.classify_source("ssh://git@example.com/d2.git").kind == "git"


def test_classify_non_git_url_is_an_error():
    with pytest.raises(inst.InstallError, match="not a git repository URL") as info:
        inst.classify_source("https://example.com/detectron2.zip")
    assert info.value.exit_code == 2


def test_classify_local_checkout(tmp_path):
    (tmp_path / "setup.py").write_text("", encoding="utf-8")
    source = inst.classify_source(str(tmp_path))
    assert source == inst.Source("path", str(tmp_path.resolve()), str(tmp_path.resolve()))
    assert inst.classify_source(f"file://{tmp_path}") == source


def test_classify_missing_path_names_it(tmp_path):
    missing = tmp_path / "no-such-detectron2"
    with pytest.raises(inst.InstallError, match="does not exist") as info:
        inst.classify_source(str(missing))
    assert str(missing) in str(info.value)
    assert info.value.exit_code == 2


def test_classify_directory_without_setup_py_names_it(tmp_path):
    with pytest.raises(inst.InstallError, match="has no setup.py") as info:
        inst.classify_source(str(tmp_path))
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_no_source_means_fallback(raw):
    assert inst.classify_source(raw) == inst.FALLBACK_SOURCE


def test_main_exits_2_for_a_missing_path(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(inst, "probe_detectron2", lambda: pytest.fail("must not probe"))
    missing = tmp_path / "nowhere"
    assert inst.main(["--source", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_env_var_names_the_source(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "from-env"
    monkeypatch.setenv(inst.SOURCE_ENV_VAR, str(missing))
    assert inst.main([]) == 2
    assert str(missing) in capsys.readouterr().err


# ------------------------------------------------------------------- simple index

SIMPLE_PAGE = """<!DOCTYPE html>
<html><head><title>Links for pb1-detectron2</title></head><body>
<h1>Links for pb1-detectron2</h1>
<a href="https://files.example.org/packages/aa/pb1_detectron2-0.5.tar.gz#sha256=00">pb1_detectron2-0.5.tar.gz</a><br/>
<a href="../../packages/60/26/pb1-detectron2-0.6.tar.gz#sha256=5d2e" data-requires-python="&gt;=3.6">pb1-detectron2-0.6.tar.gz</a><br/>
<a>no href</a>
</body></html>
"""


def test_find_file_link_resolves_relative_href_and_drops_fragment():
    page = "https://pypi.example.org/simple/pb1-detectron2/"
    url = inst.find_file_link(SIMPLE_PAGE, page, "pb1-detectron2-0.6.tar.gz")
    assert url == "https://pypi.example.org/packages/60/26/pb1-detectron2-0.6.tar.gz"


def test_find_file_link_absolute_href():
    page = "https://pypi.example.org/simple/pb1-detectron2/"
    url = inst.find_file_link(SIMPLE_PAGE, page, "pb1_detectron2-0.5.tar.gz")
    assert url == "https://files.example.org/packages/aa/pb1_detectron2-0.5.tar.gz"


def test_find_file_link_missing_file_names_page():
    page = "https://pypi.example.org/simple/pb1-detectron2/"
    with pytest.raises(inst.InstallError, match="no link to pb1-detectron2-9.9.tar.gz") as info:
        inst.find_file_link(SIMPLE_PAGE, page, "pb1-detectron2-9.9.tar.gz")
    assert page in str(info.value)


def test_index_page_url_follows_pip_index_url(monkeypatch):
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert inst.index_page_url("pb1-detectron2") == "https://pypi.org/simple/pb1-detectron2/"
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple/")
    assert inst.index_page_url("pb1-detectron2") == "https://mirror.example/simple/pb1-detectron2/"


# ------------------------------------------------------------------------ sha256


def test_verify_sha256_accepts_matching_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"detectron2")
    inst.verify_sha256(path, hashlib.sha256(b"detectron2").hexdigest())


def test_verify_sha256_mismatch_reports_both_digests(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"tampered")
    actual = hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(inst.ChecksumError) as info:
        inst.verify_sha256(path, inst.FALLBACK_SHA256)
    message = str(info.value)
    assert str(path) in message
    assert f"expected {inst.FALLBACK_SHA256}" in message and f"got {actual}" in message
    assert info.value.exit_code == 2


def test_download_mismatch_leaves_nothing_behind(tmp_path, monkeypatch):
    url = "https://files.example.org/pb1-detectron2-0.6.tar.gz"
    monkeypatch.setattr(inst, "open_url", lambda _url: io.BytesIO(b"not the sdist"))
    target = tmp_path / "cache" / "pb1-detectron2-0.6.tar.gz"
    with pytest.raises(inst.ChecksumError) as info:
        inst.download(url, target, inst.FALLBACK_SHA256)
    assert url in str(info.value)
    assert list(target.parent.iterdir()) == []


def test_download_keeps_verified_file(tmp_path, monkeypatch):
    payload = b"the sdist"
    monkeypatch.setattr(inst, "open_url", lambda _url: io.BytesIO(payload))
    target = tmp_path / "cache" / "file.tar.gz"
    inst.download("https://x/file.tar.gz", target, hashlib.sha256(payload).hexdigest())
    assert target.read_bytes() == payload
    assert [p.name for p in target.parent.iterdir()] == ["file.tar.gz"]


def test_network_failure_names_the_url(monkeypatch, tmp_path):
    import urllib.error

    def refuse(*_args, **_kwargs):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(inst.urllib.request, "urlopen", refuse)
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.invalid/simple")
    with pytest.raises(inst.InstallError, match="mirror.invalid/simple/pb1-detectron2/") as info:
        inst.cached_fallback_sdist(tmp_path)
    assert info.value.exit_code == 2


def test_cached_sdist_with_right_digest_needs_no_network(tmp_path, monkeypatch):
    monkeypatch.setattr(inst, "FALLBACK_SHA256", hashlib.sha256(b"cached").hexdigest())
    monkeypatch.setattr(inst, "open_url", lambda _url: pytest.fail("network used"))
    (tmp_path / inst.FALLBACK_FILENAME).write_bytes(b"cached")
    assert inst.cached_fallback_sdist(tmp_path) == tmp_path / inst.FALLBACK_FILENAME


# ------------------------------------------------------------ project and marker


def _make_sdist(tmp_path: Path) -> Path:
    files = {
        "pb1-detectron2-0.6/detectron2/__init__.py": '__version__ = "0.6"\n',
        "pb1-detectron2-0.6/detectron2/model_zoo/__init__.py": "",
        "pb1-detectron2-0.6/detectron2/model_zoo/configs/Base-RCNN-FPN.yaml": "MODEL: {}\n",
        "pb1-detectron2-0.6/projects/PointRend/point_rend/__init__.py": "",
        "pb1-detectron2-0.6/setup.py": "import torch\n",
    }
    archive = tmp_path / "sdist.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return archive


def test_build_python_only_project_layout(tmp_path):
    root = inst.extract_sdist(_make_sdist(tmp_path), tmp_path / "x")
    project = tmp_path / "project"
    project.mkdir()
    assert inst.build_python_only_project(root, project) == "0.6"
    assert "IS_D2TIMM_STAND_IN = True" in (project / "detectron2" / "_C.py").read_text()
    assert (project / "detectron2/model_zoo/configs/Base-RCNN-FPN.yaml").is_file()
    assert (project / "projects/PointRend/point_rend/__init__.py").is_file()
    setup_text = (project / "setup.py").read_text()
    assert "detectron2.projects.point_rend" in setup_text
    assert "detectron2.projects.deeplab" not in setup_text  # absent from this sdist


def test_marker_matching():
    request = inst.request_record(inst.Source("git", "git+https://x/d2.git", "https://x/d2.git"))
    assert request == {"source": "https://x/d2.git"}
    assert inst.marker_matches({**request, "version": "0.6"}, request)
    assert not inst.marker_matches({"source": "other"}, request)
    assert not inst.marker_matches(None, request)
    fallback = inst.request_record(inst.FALLBACK_SOURCE)
    assert fallback["source"] == "pb1-detectron2==0.6"
    assert fallback["sdist_sha256"] == inst.FALLBACK_SHA256
    assert len(fallback["requirements_sha256"]) == 64  # the requirements file is present


def test_up_to_date_decisions():
    git = inst.Source("git", "git+https://x/d2.git", "https://x/d2.git")
    compiled = {"version": "0.6", "location": "/site/detectron2", "ops": "compiled"}
    stand_in = {**compiled, "ops": "stand-in"}
    assert inst.up_to_date(git, None, None) is None
    assert inst.up_to_date(git, {"source": "https://x/d2.git"}, compiled)
    assert inst.up_to_date(git, {"source": "pb1-detectron2==0.6"}, stand_in) is None
    # No source named: a working compiled detectron2 is kept, a stand-in is refreshed.
    assert inst.up_to_date(inst.FALLBACK_SOURCE, {"source": "https://x/d2.git"}, compiled)
    assert (
        inst.up_to_date(inst.FALLBACK_SOURCE, {"source": "pb1-detectron2==0.6"}, stand_in) is None
    )


def test_summary_lines():
    info = {"version": "0.6", "location": "/x", "ops": "stand-in"}
    assert inst.summary_line(info, "pb1-detectron2==0.6") == (
        "detectron2 0.6 from pb1-detectron2==0.6 (Python sources; compiled ops "
        "unavailable: detectron2._C is a stand-in)"
    )
    compiled = {**info, "ops": "compiled"}
    assert inst.summary_line(compiled, "git+https://x").endswith("(compiled ops available)")
    broken = {**info, "ops": "broken", "error": "undefined symbol"}
    assert "undefined symbol" in inst.summary_line(broken, "/src/detectron2")


def test_help_runs():
    with pytest.raises(SystemExit) as info:
        inst.parse_args(["--help"])
    assert info.value.code == 0


def _file_index(tmp_path: Path, payload: bytes) -> str:
    page_dir = tmp_path / "index" / "pb1-detectron2"
    page_dir.mkdir(parents=True)
    (page_dir / inst.FALLBACK_FILENAME).write_bytes(payload)
    (page_dir / "index.html").write_text(
        f'<a href="{inst.FALLBACK_FILENAME}#sha256=00">{inst.FALLBACK_FILENAME}</a>',
        encoding="utf-8",
    )
    return (tmp_path / "index").as_uri()


def test_file_index_is_read_like_pip_does(tmp_path, monkeypatch):
    payload = b"sdist from a local mirror"
    monkeypatch.setenv("PIP_INDEX_URL", _file_index(tmp_path, payload))
    monkeypatch.setattr(inst, "FALLBACK_SHA256", hashlib.sha256(payload).hexdigest())
    cache = tmp_path / "cache"
    assert inst.cached_fallback_sdist(cache).read_bytes() == payload


def test_main_checksum_mismatch_exits_2_and_installs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIP_INDEX_URL", _file_index(tmp_path, b"tampered sdist"))
    monkeypatch.delenv(inst.SOURCE_ENV_VAR, raising=False)
    monkeypatch.setattr(inst, "check_torch", lambda: None)
    monkeypatch.setattr(inst, "pip", lambda *a, **k: pytest.fail("pip must not run"))
    marker = tmp_path / "marker.json"
    marker.write_text('{"source": "earlier install"}', encoding="utf-8")
    monkeypatch.setattr(inst, "marker_path", lambda: marker)
    cache = tmp_path / "cache"
    assert inst.main(["--force", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert inst.FALLBACK_FILENAME in err
    assert f"expected {inst.FALLBACK_SHA256}" in err
    assert f"got {hashlib.sha256(b'tampered sdist').hexdigest()}" in err
    assert list(cache.iterdir()) == []
    assert marker.is_file()  # the environment's record is untouched too
