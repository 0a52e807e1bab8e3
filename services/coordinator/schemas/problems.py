"""The body of every error response."""

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    location: str = Field(description="Where in the request, e.g. body.bootstrap or query.check")
    message: str


class Problem(BaseModel):
    """One line a person can act on, plus the individual field errors of a rejected request."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


PROBLEM_RESPONSES = {
    status: {"model": Problem, "description": description}
    for status, description in [
        (400, "Malformed request"),
        (401, "Missing or wrong bearer token"),
        (404, "No such resource"),
        (409, "Conflicts with the current state"),
        (413, "Request body too large"),
        (422, "Invalid request"),
        (503, "The coordinator's own Redis did not answer"),
    ]
}
