"""Copy the published figures the synthetic generator needs from the shared Klarna profile.

    python scripts/extract_klarna_facts.py ../shared/data/klarna/profile.json

writes ``klarna_pd/resources/klarna_facts.json``. The figures are facts about the real file
(counts, quantiles, level frequencies, default rates by level); the only thing added here is the
merchant category -> group mapping, which no source publishes but the exact level counts of the
10,000 unlabelled rows pin down (see ``_merchant_groups``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "klarna_pd" / "resources" / "klarna_facts.json"

# Columns that hold whole numbers even where pandas read them as float64 (because of NA).
NON_INTEGER = {
    "account_incoming_debt_vs_paid_0_24m",
    "avg_payment_span_0_12m",
    "avg_payment_span_0_3m",
    "num_active_div_by_paid_inv_0_12m",
    "time_hours",
}

# Which group each merchant category belongs to. Checked below: summing the unlabelled-row
# category counts by this map reproduces the unlabelled-row group counts exactly for all 12
# groups. "Non" and "Safety products" (7 rows each there) are the one pair the counts cannot
# tell apart between Jewelry & Accessories and Home & Garden; Safety products is put with the home.
_GROUP_OF = {
    "Entertainment": ["Diversified entertainment", "Books & Magazines", "Video Games & Related accessories",
                      "Music & Movies"],
    "Clothing & Shoes": ["Youthful Shoes & Clothing", "General Shoes & Clothing", "Adult Shoes & Clothing",
                         "Underwear"],
    "Leisure, Sport & Hobby": ["Concept stores & Miscellaneous", "Sports gear & Outdoor", "Prints & Photos",
                               "Hobby articles", "Collectibles", "Costumes & Party supplies",
                               "Musical Instruments & Equipment"],
    "Health & Beauty": ["Dietary supplements", "Prescription optics", "Body & Hair Care",
                        "Diversified Health & Beauty products", "Cosmetics",
                        "Personal care & Body improvement", "Fragrances", "Pharmaceutical products"],
    "Children Products": ["Diversified children products", "Children Clothes & Nurturing products",
                          "Children toys"],
    "Home & Garden": ["Pet supplies", "Decoration & Art", "Diversified Home & Garden products",
                      "Tools & Home improvement", "Furniture", "Kitchenware", "Plants & Flowers",
                      "Cleaning & Sanitary", "Safety products"],
    "Electronics": ["Diversified electronics", "Electronic equipment & Related accessories",
                    "Household electronics (whitegoods/appliances)",
                    "Office machines & Related accessories (excl. computers)", "Car electronics"],
    "Intangible products": ["Dating services", "Digital services", "Travel services", "Event tickets",
                            "Education"],
    "Jewelry & Accessories": ["Jewelry & Watches", "Diversified Jewelry & Accessories", "Bags & Wallets",
                              "Non"],
    "Automotive Products": ["Automotive Parts & Accessories", "Wheels & Tires"],
    "Erotic Materials": ["Diversified erotic material", "Erotic Clothing & Accessories", "Sex toys"],
    "Food & Beverage": ["Food & Beverage", "Tobacco", "Wine, Beer & Liquor"],
}


def _merchant_groups(cols: dict) -> dict[str, str]:
    cat = cols["merchant_category"]
    grp = cols["merchant_group"]
    mapping = {c: g for g, cats in _GROUP_OF.items() for c in cats}
    if sorted(mapping) != sorted(cat["all_57_levels"]):
        raise SystemExit("category map does not cover exactly the 57 published levels")
    sums: dict[str, int] = {}
    for c, n in cat["levels_unlabelled_computed"].items():
        sums[mapping[c]] = sums.get(mapping[c], 0) + n
    if sums != grp["levels_unlabelled_computed"]:
        raise SystemExit(f"category map does not reproduce the group counts: {sums}")
    return mapping


def _column_facts(name: str, col: dict) -> dict:
    out: dict = {"type": col["type"], "missing": col["missing"]}
    if "missing" in col and "non_null_unlabelled" in col:
        out["missing_unlabelled"] = 10000 - col["non_null_unlabelled"]
    stats = col.get("stats", {})
    if col["type"] == "numeric":
        out["integer"] = name not in NON_INTEGER
        out["quantiles"] = {k: stats[k] for k in ("min", "p05", "p25", "p50", "p75", "p95", "max")}
        out["mean"] = stats["mean"]
        out["std"] = stats["std"]
    if "levels" in col:
        out["levels"] = col["levels"]
    for key in ("levels_unlabelled_computed", "levels_labelled_derived"):
        if key in col:
            out[key] = col[key]
    rates = col.get("default_rate_by_level", {})
    for key in ("exact_counts_labelled", "rate_labelled_6dp", "rate_labelled_3dp", "by_missingness_labelled_derived"):
        if key in rates:
            out.setdefault("default_rate_by_level", {})[key] = rates[key]
    if "stats_by_default_labelled" in col:
        out["stats_by_default_labelled"] = col["stats_by_default_labelled"]
    if "ks_default0_vs_1_approx" in col:
        out["ks_default0_vs_1_approx"] = col["ks_default0_vs_1_approx"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    profile = json.loads(args.profile.read_text())
    cols = profile["columns"]
    facts = {
        "source": "../shared/data/klarna/profile.json (figures from public notebooks; see its sources)",
        "rows": profile["rows"],
        "labelled_rows": profile["labelled_rows"],
        "unlabelled_rows": profile["unlabelled_rows"],
        "default_rate": profile["default_rate"],
        "default_counts_labelled": profile["default_counts_labelled"],
        "column_order": list(cols),
        "columns": {name: _column_facts(name, col) for name, col in cols.items()},
        "merchant_category_group": _merchant_groups(cols),
        "merchant_category_all_levels": cols["merchant_category"]["all_57_levels"],
    }
    args.out.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
