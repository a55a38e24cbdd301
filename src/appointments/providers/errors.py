from appointments.errors import Conflict


class ProviderHasBookings(Conflict):
    code = "availability_conflict"
