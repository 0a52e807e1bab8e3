"""The standalone worker's config file: clear errors for every mistake."""

from pathlib import Path

import pytest

from amity.errors import ConfigError
from amity.mirror.config import load_config

REGIONS = "regions:\n  us: {bootstrap: '127.0.0.1:1'}\n  eu: {bootstrap: '127.0.0.1:2'}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(text)
    return path


def test_a_valid_config_loads_regions_links_and_the_links_to_run(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, REGIONS + "links:\n  - {source: us, destination: eu}\n"
                                                   "  - {source: eu, destination: us, naming: prefix}\nrun: [us-to-eu]\n"))
    assert config.regions["us"].bootstrap == "127.0.0.1:1"
    assert [link.name for link in config.running_links()] == ["us-to-eu"]
    assert config.links[1].destination_topic("orders") == "eu.orders"


@pytest.mark.parametrize(("text", "needle"), [
    ("links: [: bad", "not valid YAML"),
    (REGIONS + "links:\n  - {source: us, destination: mars}\n", "'mars'"),
    (REGIONS + "links:\n  - {source: us, destination: us}\n", "into itself"),
    (REGIONS + "links:\n  - {source: us, destination: eu, include: ['(']}\n", "not a valid regular expression"),
    (REGIONS + "links:\n  - {source: us, destination: eu}\n  - {source: us, destination: eu}\n", "two links"),
    (REGIONS + "links:\n  - {source: us, destination: eu}\nrun: [eu-to-us]\n", "unknown links"),
    (REGIONS + "links:\n  - {source: us, destination: eu, colour: red}\n", "colour"),
    (REGIONS + "links: []\n", "links"),
])
def test_mistakes_are_config_errors_naming_the_file(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert needle in str(caught.value) and "mirror.yaml" in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
