FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 NEONPRO_VAR_DIR=/app/var
WORKDIR /app
RUN useradd --create-home --uid 10001 neonpro
COPY pyproject.toml constraints.txt README.md ./
COPY neonpro ./neonpro
COPY clinics ./clinics
COPY chat ./chat
COPY compliance ./compliance
COPY monitoring ./monitoring
# simulated_provider/ (the development and test stand-in for the AI providers) stays
# out: a production image talks to real providers only.
COPY templates ./templates
COPY static ./static
COPY locale ./locale
COPY manage.py ./
# The versions the test suite passed with (constraints.txt).
RUN pip install --upgrade pip && pip install -c constraints.txt .
RUN DEBUG=true python manage.py collectstatic --noinput \
    && chown -R neonpro /app/var \
    && install -d -o neonpro -m 0750 /var/lib/neonpro/audit-anchors
USER neonpro
# A fresh named volume mounted here takes this directory's owner (compose: auditanchors).
VOLUME ["/var/lib/neonpro/audit-anchors"]
EXPOSE 8000
# daphne with bounded request bodies and JSON logs (neonpro/server.py). The client's
# address comes from X-Forwarded-For only behind TRUSTED_PROXIES (the proxy's network).
CMD ["python", "-m", "neonpro.server", "-b", "0.0.0.0", "-p", "8000", "neonpro.asgi:application"]
