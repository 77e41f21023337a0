"""Where things are: the checkout, the shared data beside it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
PROFILE = SHARED / "data" / "klarna" / "profile.json"
UCI = SHARED / "data" / "uci_taiwan" / "UCI_Credit_Card.csv"
UCI_SPEC = ROOT / "specs" / "uci_taiwan.yaml"
