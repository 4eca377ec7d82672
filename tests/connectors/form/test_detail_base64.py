"""A file that comes base64 inside a JSON detail answer, behind an API key: shaped as
Scaleway's billing API, where the list gives each invoice's id and its download address
answers `{"name": ..., "content_type": ..., "content": "<base64>"}`."""

from __future__ import annotations

import base64
import uuid

import pytest
import yaml

from connectors.form.connector import FormConnector
from gmid.errors import PortalChanged, WrongCredentials
from tests.connectors.form.harness import PDF, Harness, as_json
from tests.support.portal_http import Request, serve

KEY = "SCW" + "0123456789ABCDEF0123"
INVOICES = [str(uuid.UUID(int=n)) for n in (7, 8)]


class Billing:
    content_key = "content"  # a new version renames it

    def __call__(self, request: Request):
        if request.headers.get("x-auth-token") != KEY:
            return as_json(
                {"message": "authentication is denied", "type": "denied_authentication"}, 401
            )
        if request.path == "/billing/v2beta1/invoices":
            rows = [
                {
                    "id": id,
                    "number": f"FR-{n}",
                    "issued_date": f"2025-0{n}-01T00:00:00Z",
                    "total_taxed": {"currency_code": "EUR", "units": 12, "nanos": 340000000},
                }
                for n, id in enumerate(INVOICES, start=1)
            ]
            return as_json({"total_count": len(rows), "invoices": rows})
        for id in INVOICES:
            if request.path == f"/billing/v2beta1/invoices/{id}/download":
                content = base64.b64encode(PDF + id.encode()).decode()
                return as_json(
                    {
                        "name": f"{id}.pdf",
                        "content_type": "application/pdf",
                        self.content_key: content,
                    }
                )
        return 404, {}, "not found"


SCALEWAY = """
start: URL/
login: {type: none}
headers:
  X-Auth-Token: {format: "{secret}", secret: {env: SCW_SECRET_KEY}}
documents:
  type: json
  pages: ["/billing/v2beta1/invoices?page=1&per_page=100"]
  rows: invoices
  fields:
    id: id
    number: number
    date: {path: issued_date, regex: "^([0-9-]{10})"}
    amount: total_taxed.units
  detail:
    link: {path: "join('', ['/billing/v2beta1/invoices/', id, '/download?file_type=pdf'])"}
    download: {base64: {path: content}}
"""
SECRETS = {"headers.X-Auth-Token.secret": KEY}


@pytest.fixture
def billing(tmp_path):
    portal = Billing()
    with serve(portal) as served:
        yield portal, Harness(served.url, served.requests, tmp_path)


def test_the_file_in_the_detail_answer_is_decoded_and_known_ids_cost_no_request(billing):
    _, h = billing
    connector = h.connector(SCALEWAY, secrets=SECRETS)
    connector.login()
    files = {doc.number: connector.download(doc)[0] for doc in connector.documents()}
    assert files == {"FR-1": PDF + INVOICES[0].encode(), "FR-2": PDF + INVOICES[1].encode()}
    downloads = [r for r in h.requests if r.path.endswith("/download")]
    assert len(downloads) == 2  # one answer each: listed, then its file taken from it
    again = h.connector(SCALEWAY, secrets=SECRETS, known=lambda ref: True)
    assert [d.number for d in again.documents()] == ["FR-1", "FR-2"]
    assert len([r for r in h.requests if r.path.endswith("/download")]) == 2


def test_a_refused_key_is_wrong_credentials(billing):
    _, h = billing
    connector = h.connector(SCALEWAY, secrets={"headers.X-Auth-Token.secret": "SCWwrong"})
    connector.login()
    with pytest.raises(WrongCredentials, match="refused the headers"):
        list(connector.documents())


def test_a_detail_answer_without_the_file_is_portal_changed_naming_the_path(billing):
    portal, h = billing
    portal.content_key = "data"
    connector = h.connector(SCALEWAY, secrets=SECRETS)
    with pytest.raises(PortalChanged, match=r"documents\.detail\.download\.base64") as e:
        list(connector.documents())
    assert e.value.page == str(h.saved[0])


def test_base64_is_for_json_detail_pages_of_one_document():
    options = yaml.safe_load(SCALEWAY.replace("URL", "https://api.example"))
    assert FormConnector.check_options(options) == []
    options["documents"]["detail"]["rows"] = "files"
    assert dict(FormConnector.check_options(options)) == {
        "documents.detail.download.base64": "only for a detail page of one document (without "
        "detail.rows)"
    }
