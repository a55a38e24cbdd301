from appointments.errors import DomainError


class Unauthorized(DomainError):
    """No usable bearer token: missing, malformed, forged, expired, or for someone else."""

    status = 401
    code = "unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        challenge = 'Bearer realm="appointments"'
        if error:
            challenge += f', error="{error}", error_description="{detail}"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
