from appointments.errors import Conflict, DomainError


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
