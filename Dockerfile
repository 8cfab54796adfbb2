# The app image: the React bundle built with Node, served with the Python app by daphne.
FROM node:20-bookworm-slim AS frontend
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > requirements.txt && pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=frontend /app/streaming/static/streaming ./streaming/static/streaming
# collectstatic needs settings that load; the real key comes from the environment at run time.
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --no-input -v0
RUN useradd --system --uid 1000 chat && chown -R chat /app
USER chat
EXPOSE 8000
CMD ["python", "-m", "chatproject.server", "-b", "0.0.0.0", "-p", "8000", \
     "--proxy-headers", "--proxy-headers-host", "X-Real-IP", "chatproject.asgi:application"]
