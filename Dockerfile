# syntax=docker/dockerfile:1
# Build stage: compile wheels (asyncpg, uvloop, ...) with the toolchain that the
# final image must not carry.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

# Runtime stage: the wheels only, a non-root user, no compilers.
FROM python:3.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    APPOINTMENTS_ENVIRONMENT=production
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels "appointments==0.1.0" \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /app --create-home appointments
USER 10001
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["appointments"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
