# bloodssl on CPU: JupyterLab on port 8888 with the repository mounted at /work.
# docker compose --profile cpu up   (see docker-compose.yml)
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg

RUN apt-get update \
    && apt-get install -y --no-install-recommends make git libmagickwand-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /work

# CPU wheels of the pinned torch pair (the default PyPI wheels carry several GB of CUDA).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1

# The package and its extras, as `make setup` installs them.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install -e ".[notebooks,transfer,fast,robustness,scale,dev]" \
    && python -m ipykernel install --sys-prefix --name bloodssl --display-name "Python (bloodssl)"

EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root", "--ServerApp.root_dir=/work"]
