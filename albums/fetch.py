"""Fetching web pages and images for scrape runs, safely: no Django here (as in captioning.py).

    fetcher = Fetcher(FetchPolicy(user_agent="Imagineer", max_bytes=20_000_000))
    page = fetcher.get("https://example.org/gallery/")   # a Response, or raises Refused

The rules, each a `Refused` with a short `reason` (counted per run) and a message:

- Only http and https URLs ("scheme").
- No server-side request forgery ("address"): the host name is resolved and *every*
  address it resolves to is checked; private, loopback, link-local, multicast, reserved and
  unspecified addresses are refused (IPv4-mapped IPv6 addresses as their IPv4). The
  connection then goes to the address that was checked (not a second lookup, which a
  rebinding DNS could answer differently), with the name in the Host header and TLS SNI.
  Redirects are followed here, not by a library, so each hop is checked the same way
  ("redirect-loop", "redirects": at most `max_redirects`). `allow_loopback` lets a test's
  site on 127.0.0.1 through; it is off in production (a deploy system check warns).
- robots.txt of each origin is read once (through the same checks) and obeyed for our user
  agent ("robots"); a robots.txt that cannot be read for a server error forbids the site,
  one that is missing (4xx) allows it, as RFC 9309 says.
- Every request waits until `host_delay` seconds have passed since the last one to the same
  host; each has a connect/read `timeout` and a whole-response deadline of twice it
  ("timeout"), and a byte limit ("too-large", from Content-Length or while reading).
- Answers other than 2xx are "http-error"; network failures "network".

`parse_page(html, base_url)` gives the links and the images of a page, each image with the
text a person wrote for it: its alt text, else its title, else its figure's caption.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser


class Refused(Exception):
    """A URL not fetched: `reason` is a short key (counted), the message says why."""

    def __init__(self, reason, message):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class FetchPolicy:
    user_agent: str
    max_bytes: int
    timeout: float = 10.0
    host_delay: float = 1.0
    max_redirects: int = 5
    allow_loopback: bool = False


@dataclass
class Response:
    url: str  # the final URL, after redirects
    status: int
    content_type: str
    body: bytes
    location: str = ""  # of a redirect


def check_address(address, *, allow_loopback=False):
    """Raise Refused unless `address` (an IP as text) is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback and allow_loopback:
        return
    for kind in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            raise Refused("address", f"{address} is a {kind.replace('_', '-')} address")
    if not ip.is_global:
        raise Refused("address", f"{address} is not a public address")


def resolve(host, port, *, allow_loopback=False):
    """The addresses `host` resolves to, every one checked; raises Refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused("network", f"{host}: the name does not resolve ({exc})") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        try:
            check_address(address, allow_loopback=allow_loopback)
        except Refused as exc:
            raise Refused("address", f"{host} resolves to {exc}") from None
    if not addresses:
        raise Refused("network", f"{host}: the name resolves to no address")
    return addresses


def split_url(url):
    """(scheme, host, port, path with query) of an http(s) URL; raises Refused."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise Refused("scheme", f"{url}: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("scheme", f"{url}: only http and https URLs are fetched")
    if not parts.hostname:
        raise Refused("scheme", f"{url}: the URL names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("scheme", f"{url}: {exc}") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address already checked (the Host header keeps the name)."""

    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Fetcher:
    """Fetches URLs under a FetchPolicy (see the module docstring). One per scrape run."""

    def __init__(self, policy, *, sleep=time.sleep, clock=time.monotonic):
        self.policy = policy
        self.sleep, self.clock = sleep, clock
        self.last_request = {}  # host -> clock() of its last request
        self.robots = {}  # origin -> RobotFileParser, or None: everything allowed
        self.lock = threading.Lock()

    def get(self, url):
        """The response to GET `url`, redirects followed and checked; raises Refused."""
        seen = {url}
        for _ in range(self.policy.max_redirects + 1):
            _, host, port, _ = split_url(url)  # the scheme and the address first, then
            resolve(host, port, allow_loopback=self.policy.allow_loopback)  # robots.txt
            self.check_robots(url)
            response = self.request(url)
            if response.status in (301, 302, 303, 307, 308):
                target = urldefrag(urljoin(url, response.location))[0]
                if target in seen:
                    raise Refused("redirect-loop", f"{url}: the redirects loop back to {target}")
                seen.add(target)
                url = target
                continue
            if not 200 <= response.status < 300:
                raise Refused("http-error", f"{url}: the server answered {response.status}")
            return response
        raise Refused("redirects", f"{url}: more than {self.policy.max_redirects} redirects")

    def request(self, url):
        """One GET, no redirect followed (a 3xx answer carries its `location`); raises
        Refused."""
        scheme, host, port, path = split_url(url)
        address = resolve(host, port, allow_loopback=self.policy.allow_loopback)[0]
        self.wait_for(host)
        kind = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
        connection = kind(host, port, address, timeout=self.policy.timeout)
        deadline = self.clock() + 2 * self.policy.timeout
        try:
            connection.request("GET", path, headers={
                "User-Agent": self.policy.user_agent, "Accept": "*/*",
                "Accept-Encoding": "identity"})
            answer = connection.getresponse()
            if 300 <= answer.status < 400 and answer.getheader("Location"):
                return Response(url, answer.status, "", b"", answer.getheader("Location"))
            length = answer.getheader("Content-Length")
            if length and length.isdigit() and int(length) > self.policy.max_bytes:
                raise Refused("too-large", f"{url}: {length} bytes; at most "
                                           f"{self.policy.max_bytes} are fetched")
            body = self.read(answer, url, deadline)
            content_type = (answer.getheader("Content-Type") or "").split(";")[0].strip()
            return Response(url, answer.status, content_type.lower(), body)
        except TimeoutError as exc:
            raise Refused("timeout", f"{url}: no answer within "
                                     f"{self.policy.timeout:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise Refused("network", f"{url}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            connection.close()

    def read(self, answer, url, deadline):
        chunks, size = [], 0
        while True:
            chunk = answer.read(64 * 1024)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.policy.max_bytes:
                raise Refused("too-large", f"{url}: more than {self.policy.max_bytes} bytes")
            if self.clock() > deadline:
                raise Refused("timeout", f"{url}: the answer took longer than "
                                         f"{2 * self.policy.timeout:g} s")
            chunks.append(chunk)

    def wait_for(self, host):
        """Sleep until host_delay has passed since the last request to `host`."""
        with self.lock:
            last = self.last_request.get(host)
            if last is not None:
                wait = last + self.policy.host_delay - self.clock()
                if wait > 0:
                    self.sleep(wait)
            self.last_request[host] = self.clock()

    def check_robots(self, url):
        scheme, host, port, _ = split_url(url)
        origin = f"{scheme}://{host}:{port}"
        if origin not in self.robots:
            self.robots[origin] = self.read_robots(f"{scheme}://{urlsplit(url).netloc}")
        robots = self.robots[origin]
        if robots is not None and not robots.can_fetch(self.policy.user_agent, url):
            raise Refused("robots", f"{url}: robots.txt forbids it")

    def read_robots(self, origin):
        """The origin's robots.txt rules; None when there are none (a 4xx)."""
        url = f"{origin}/robots.txt"
        try:
            response = self.request(url)
            if 300 <= response.status < 400:  # one redirect, same origin only
                target = urljoin(url, response.location)
                if urlsplit(target).netloc != urlsplit(url).netloc:
                    return None
                response = self.request(target)
        except Refused:
            return forbid_all()
        if 400 <= response.status < 500:
            return None
        if response.status >= 300:
            return forbid_all()
        parser = RobotFileParser()
        parser.parse(response.body.decode("utf-8", "replace").splitlines())
        return parser


def forbid_all():
    parser = RobotFileParser()
    parser.parse(["User-agent: *", "Disallow: /"])
    return parser


@dataclass
class FoundImage:
    url: str
    text: str  # alt, else title, else the figure's caption; "" when none


@dataclass
class Page:
    links: list = field(default_factory=list)
    images: list = field(default_factory=list)


class PageParser(HTMLParser):
    def __init__(self, base_url):
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.page = Page()
        self.figures = []  # open <figure>s: [images in it, caption parts]
        self.in_caption = 0

    def handle_starttag(self, tag, attrs):
        attrs = {name: (value or "") for name, value in attrs}
        if tag == "base" and absolute(self.base_url, attrs.get("href")):
            self.base_url = absolute(self.base_url, attrs["href"])
        elif tag == "a" and absolute(self.base_url, attrs.get("href")):
            self.page.links.append(absolute(self.base_url, attrs["href"]))
        elif tag == "img" and absolute(self.base_url, attrs.get("src")):
            text = " ".join((attrs.get("alt") or attrs.get("title") or "").split())
            image = FoundImage(absolute(self.base_url, attrs["src"]), text)
            self.page.images.append(image)
            if self.figures:
                self.figures[-1][0].append(image)
        elif tag == "figure":
            self.figures.append(([], []))
        elif tag == "figcaption":
            self.in_caption += 1

    def handle_endtag(self, tag):
        if tag == "figcaption" and self.in_caption:
            self.in_caption -= 1
        elif tag == "figure" and self.figures:
            images, caption = self.figures.pop()
            text = " ".join(" ".join(caption).split())
            for image in images:
                image.text = image.text or text

    def handle_data(self, data):
        if self.in_caption and self.figures:
            self.figures[-1][1].append(data)


def absolute(base, href):
    """The absolute URL of `href` on `base`, fragment dropped; "" for none or a malformed
    one (an unclosed IPv6 bracket, a port out of range: skipped, not a failed run)."""
    if not href or not href.strip():
        return ""
    try:
        url = urldefrag(urljoin(base, href.strip()))[0]
        urlsplit(url).port  # noqa: B018 (raises ValueError when out of range)
    except ValueError:
        return ""
    return url


def parse_page(html, base_url):
    """The links and images of a page (absolute URLs, fragments dropped, in page order)."""
    parser = PageParser(base_url)
    parser.feed(html)
    parser.close()
    return parser.page


def same_site(url, start_url):
    """Whether `url` is on the start URL's host (a www. prefix aside)."""
    def host(u):
        name = (urlsplit(u).hostname or "").lower()
        return name.removeprefix("www.")

    return host(url) == host(start_url)
