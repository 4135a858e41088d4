"""Schema of the run store, as an ordered list of migrations (never edit one that has shipped)."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "runs and predictions",
        [
            """CREATE TABLE runs (
                run_id VARCHAR PRIMARY KEY,
                created_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                command VARCHAR NOT NULL,
                model VARCHAR,
                status VARCHAR NOT NULL,
                params JSON,
                versions JSON,
                summary JSON,
                error VARCHAR
            )""",
            """CREATE TABLE predictions (
                run_id VARCHAR NOT NULL,
                idx INTEGER NOT NULL,
                text VARCHAR NOT NULL,
                label VARCHAR NOT NULL,
                probs JSON NOT NULL,
                warnings JSON,
                PRIMARY KEY (run_id, idx)
            )""",
            # Generic per-item results of dataset jobs (keyed so an interrupted run can resume).
            """CREATE TABLE items (
                run_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                key VARCHAR NOT NULL,
                payload JSON NOT NULL,
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (run_id, kind, key)
            )""",
        ],
    ),
]

MIGRATIONS.append(
    (
        2,
        "explanations",
        [
            """CREATE TABLE explanations (
                run_id VARCHAR NOT NULL,
                idx INTEGER NOT NULL,
                text VARCHAR NOT NULL,
                method VARCHAR NOT NULL,
                target VARCHAR NOT NULL,
                label VARCHAR NOT NULL,
                predicted VARCHAR NOT NULL,
                probs JSON NOT NULL,
                granularity VARCHAR NOT NULL,
                units JSON NOT NULL,
                scores JSON NOT NULL,
                delta DOUBLE,
                seconds DOUBLE,
                payload JSON NOT NULL,
                PRIMARY KEY (run_id, idx)
            )""",
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        "run lifecycle: owner process, host and heartbeat",
        [
            "ALTER TABLE runs ADD COLUMN pid INTEGER",
            "ALTER TABLE runs ADD COLUMN host VARCHAR",
            # the owner's start time (Linux clock ticks since boot): a reused pid is not the owner
            "ALTER TABLE runs ADD COLUMN pid_started VARCHAR",
            "ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP",
        ],
    )
)

SCHEMA_VERSION = MIGRATIONS[-1][0]

# Every table of the store, with the columns read to check that it is intact.
TABLE_KEYS: dict[str, str] = {
    "schema_version": "version",
    "runs": "*",
    "predictions": "run_id, idx",
    "items": "run_id, kind, key",
    "explanations": "run_id, idx",
}

# Result tables that `runs show/export` know about, with their ordering column.
RESULT_TABLES: dict[str, str] = {
    "predictions": "idx",
    "explanations": "idx",
    "items": "kind, key",
}
