from appointments.errors import DomainError


class WebhookUrlNotAllowed(DomainError):
    status = 422
    code = "webhook_url_not_allowed"
