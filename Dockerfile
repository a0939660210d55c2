# The soc image used by docker-compose.yml: the package, its rules, collectors and console.
FROM python:3.11-slim
# A fixed uid, so a secret file or a bind-mounted log folder can be made readable for it.
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/soc soc
WORKDIR /opt/soc
COPY pyproject.toml README.md ./
COPY soc ./soc
COPY detectors ./detectors
COPY collectors ./collectors
COPY rules ./rules
COPY dashboards ./dashboards
COPY scenarios ./scenarios
# Editable: soc finds rules/ and scenarios/ beside its package, as in a checkout.
RUN pip install --no-cache-dir -e .
USER soc
ENV SOC_VAR_DIR=/var/lib/soc
CMD ["soc", "--help"]
