"""Documents that leave the building — invoices, settlement slips, farmers' balances — as PDFs
from one engine: HTML templates per language rendered by WeasyPrint (Pango and HarfBuzz shape
Tamil correctly) in Debian's Noto fonts (scripts/ensure-documents.sh installs them).

Domains hand in a typed value (`documents.types`) and get bytes back (`documents.render`); this
package reads no database and imports no domain, so every domain can use it.
"""
