"""What Motor's two GridFS web handlers share: the ETag, the content type, the caching
headers and the conditional-request checks (imports neither aiohttp nor Tornado)."""
from __future__ import annotations

import datetime
import email.utils
import mimetypes
from typing import Any, Dict, Optional

from amongo.motor_gridfs import _hash_gridout

__all__ = ["gridout_headers", "is_not_modified"]


def gridout_headers(path: str, gridout: Any, cache_time: int) -> Dict[str, str]:
    """``Etag``, ``Last-Modified``, ``Content-Type`` (the file's ``contentType``, else guessed
    from *path*'s extension, else none), and ``Cache-Control`` (``public``, or
    ``max-age=N`` plus ``Expires`` when *cache_time* > 0), as Motor's handlers send them."""
    headers = {
        "Etag": '"%s"' % _hash_gridout(gridout),
        "Last-Modified": email.utils.format_datetime(_utc(gridout.upload_date), usegmt=True),
    }
    content_type = content_type_of(path, gridout)
    if content_type:
        headers["Content-Type"] = content_type
    if cache_time > 0:
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=cache_time)
        headers["Expires"] = email.utils.format_datetime(expires, usegmt=True)
        headers["Cache-Control"] = "max-age=%d" % cache_time
    else:
        headers["Cache-Control"] = "public"
    return headers


def content_type_of(path: str, gridout: Any) -> Optional[str]:
    """The file's ``contentType``, else the type guessed from *path* (Motor's rule)."""
    content_type: Optional[str] = gridout.content_type
    if content_type is None:
        content_type, _encoding = mimetypes.guess_type(path)
    return content_type


def is_not_modified(gridout: Any, if_modified_since: Optional[str], if_none_match: Optional[str]) -> bool:
    """Whether a conditional GET gets ``304 Not Modified``: the ``If-Modified-Since`` date is
    at or after the upload date (to the second), or ``If-None-Match`` lists the file's ETag
    (Motor compares a single tag; a list, ``W/`` and ``*`` are accepted here too)."""
    if if_modified_since:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            since = None
        if since is not None and _utc(since) >= _utc(gridout.upload_date).replace(microsecond=0):
            return True
    if if_none_match is not None:
        wanted = _hash_gridout(gridout)
        for tag in (t.strip() for t in if_none_match.split(",")):
            if tag.startswith("W/"):  # a weak validator compares equal too (RFC 9110 13.1.2)
                tag = tag[2:]
            if tag == "*" or tag.strip('"') == wanted:
                return True
    return False


def _utc(dt: datetime.datetime) -> datetime.datetime:
    """*dt* as an aware UTC datetime (GridFS stores UTC; naive values are UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)
