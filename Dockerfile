# The soc image used by docker-compose.yml: the package and its console script, nothing else.
FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/soc soc
WORKDIR /opt/soc
COPY pyproject.toml README.md ./
COPY soc ./soc
COPY detectors ./detectors
COPY collectors ./collectors
COPY rules ./rules
COPY dashboards ./dashboards
RUN pip install --no-cache-dir .
USER soc
ENV SOC_VAR_DIR=/var/lib/soc
CMD ["soc", "--help"]
