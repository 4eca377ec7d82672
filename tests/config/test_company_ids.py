"""A company's `vat_ids:` and `ibans:` in the config: normalised, and errors by file and line."""

from __future__ import annotations

from pathlib import Path

from tests.config.test_config import load, problems, write


def test_vat_ids_and_ibans_are_read_as_printed(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        companies:
          - name: Telekom
            senders: ["@telekom.de"]
            vat_ids: [DE 123 475 223, "de-123.475.223"]
            ibans: [DE89 3704 0044 0532 0130 00]
        """,
    )
    [company] = config.companies
    assert company.vat_ids == ("DE123475223",)
    assert company.ibans == ("DE89370400440532013000",)


def test_a_wrong_vat_id_or_iban_names_its_file_line_and_option(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """
        companies:
          - name: Telekom
            vat_ids:
              - DE123475223
              - 12345
            ibans: [DE89 3704 0044 0532 0130 01]
        """,
    )
    assert problems(path) == [
        ("config.yaml", 6, "companies[0].vat_ids[1]", "'12345' is no VAT ID, like DE123456789"),
        (
            "config.yaml",
            7,
            "companies[0].ibans[0]",
            "'DE89 3704 0044 0532 0130 01' is no IBAN (its check digits are wrong, or its form)",
        ),
    ]
