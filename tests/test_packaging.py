"""A plain (non-editable) install carries every module: the editable install the tests run under cannot show a
package left out of setup.cfg, as hvp.commands once was (the `hvp` command then failed on import)."""
import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module_of_every_mapped_folder(tmp_path):
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    folders = dict(line.split(" = ") for line in config["options"]["package_dir"].strip().splitlines())
    source = tmp_path / "source"  # a copy: setuptools would reuse a build/ folder left in the checkout
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for folder in set(folders.values()):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(source)], check=True)
    (wheel,) = tmp_path.glob("hvp-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{package.replace('.', '/')}/{path.relative_to(source / folder).as_posix()}"
                for package, folder in folders.items() for path in (source / folder).rglob("*.py")}
    assert len(expected) > 50 and expected <= packed, sorted(expected - packed)[:10]
