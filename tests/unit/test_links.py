import pytest
from pydantic import ValidationError

from amity.links import Link


@pytest.mark.parametrize("include", [("(?i)orders",), ("(?P<n>a.*)", "(?P<n>b.*)")])
def test_patterns_that_compile_alone_but_not_joined_are_refused(include: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match="cannot be matched together"):
        Link(source="us", destination="eu", include=include)


def test_scoped_flags_select_as_written() -> None:
    link = Link(source="us", destination="eu", include=("(?i:orders)", "payments"))
    assert link.selects("ORDERS") and link.selects("payments")
    assert not link.selects("PAYMENTS")
