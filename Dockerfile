# One image for every process of the platform; the command picks the process.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app:/app/gen
COPY pyproject.toml ./
COPY runtime runtime
COPY services services
COPY gateway gateway
COPY sandbox sandbox
COPY stack stack
COPY gen gen
RUN pip install --no-cache-dir . && useradd --system collect
USER collect
CMD ["python", "-m", "gateway"]
