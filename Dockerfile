# jobctl: one image for every service; the command picks the service (`jobctl api`, `jobctl worker`, ...).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY scheduler ./scheduler
COPY workers ./workers
COPY api ./api
COPY bench ./bench
COPY jobctl ./jobctl
RUN pip install . \
    && useradd --create-home --uid 1000 jobctl \
    && mkdir -p /data \
    && chown jobctl /data

USER jobctl
WORKDIR /home/jobctl
ENV JOBCTL_FILE_ROOT=/data
VOLUME ["/data"]
EXPOSE 8000 5555

ENTRYPOINT ["jobctl"]
CMD ["--help"]
