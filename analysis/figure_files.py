"""Where the analysis scripts put their figures and tables: docs/figures/NAME.png and NAME*.csv."""

from __future__ import annotations

from pathlib import Path

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def save(fig, name: str, **tables) -> None:
    """Write fig as NAME.png and each table as NAME.csv (keyword ``csv``) or NAME_<key>.csv."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(FIGURES / f"{name}.png", dpi=130)
    for key, table in tables.items():
        table.to_csv(FIGURES / (f"{name}.csv" if key == "csv" else f"{name}_{key}.csv"), index=False)
