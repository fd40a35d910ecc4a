"""SchemaPin: sign and verify tool schemas, discover and check signing keys.

Owns the wire format (interoperable with the reference ``schemapin`` 1.3
package): canonical JSON (sorted keys, no spaces, UTF-8 kept), SHA-256 of it,
an ECDSA P-256 signature over that digest (``ECDSA(SHA256)`` of the digest, as
the reference does), DER, standard base64. Key fingerprints are ``sha256:`` +
hex of the DER SubjectPublicKeyInfo.

Key discovery (:class:`KeyResolver`): a trust bundle, local discovery files
and ``https://DOMAIN/.well-known/schemapin.json`` fetched with httpx (async,
with a timeout). Revocation: the discovery document's ``revoked_keys``, a
bundle's revocation documents, and the optional ``revocation_endpoint``.

:class:`SchemaVerifier` puts it together with the TOFU key store: the key is
pinned only *after* a valid signature, and a changed key is blocked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.errors import ErrorCode, SymbiError

log = logging.getLogger("symbi.mcp.schemapin")

WELL_KNOWN_PATH = "/.well-known/schemapin.json"
MAX_DISCOVERY_BYTES = 64 * 1024


# -- the primitives ---------------------------------------------------------------


def canonicalize(schema: Any) -> str:
    """The SchemaPin canonical form of a JSON value."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def schema_hash(schema: Any) -> bytes:
    return hashlib.sha256(canonicalize(schema).encode("utf-8")).digest()


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_private_key(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SymbiError(
            ErrorCode.SCHEMA_001, f"not a usable PEM private key: {exc}", hint="an unencrypted P-256 PEM key"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SymbiError(ErrorCode.SCHEMA_001, "SchemaPin keys are ECDSA P-256", offending=type(key).__name__)
    return key


def load_public_key(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SymbiError(ErrorCode.SCHEMA_001, f"not a usable PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SymbiError(ErrorCode.SCHEMA_001, "SchemaPin keys are ECDSA P-256", offending=type(key).__name__)
    return key


def fingerprint(key: ec.EllipticCurvePublicKey | str | bytes) -> str:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        key = load_public_key(key)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def sign_schema(schema: Any, key: ec.EllipticCurvePrivateKey | str | bytes) -> str:
    """The base64 SchemaPin signature of ``schema``."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        key = load_private_key(key)
    return base64.b64encode(key.sign(schema_hash(schema), ec.ECDSA(hashes.SHA256()))).decode()


def verify_signature(schema: Any, signature_b64: str, key: ec.EllipticCurvePublicKey | str | bytes) -> bool:
    """Is ``signature_b64`` a valid signature of ``schema`` by ``key``? Never raises on bad input."""
    try:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            key = load_public_key(key)
        sig = base64.b64decode(signature_b64, validate=True)
        key.verify(sig, schema_hash(schema), ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, binascii.Error, ValueError, TypeError, SymbiError):
        return False


def well_known_document(
    public_pem: str,
    developer_name: str | None = None,
    *,
    revoked_keys: list[str] | None = None,
    contact: str | None = None,
) -> dict[str, Any]:
    """A ``.well-known/schemapin.json`` document (same shape as the reference's)."""
    doc: dict[str, Any] = {
        "schema_version": "1.2",
        "public_key_pem": public_pem,
        "revoked_keys": list(revoked_keys or []),
    }
    if developer_name:
        doc["developer_name"] = developer_name
    if contact:
        doc["contact"] = contact
    return doc


# -- discovery ---------------------------------------------------------------------


@dataclass
class Discovery:
    """A domain's signing key and what is known to be revoked."""

    domain: str
    public_key_pem: str
    source: str  # "bundle", "file:PATH", "https://..."
    developer_name: str | None = None
    revoked: set[str] = field(default_factory=set)


def _revoked_from_doc(doc: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for item in doc.get("revoked_keys") or []:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict) and isinstance(item.get("fingerprint"), str):
            out.add(item["fingerprint"])
    return out


def _discovery_from_doc(domain: str, doc: Any, source: str) -> Discovery:
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("public_key_pem"), str)
        or "BEGIN PUBLIC KEY" not in doc["public_key_pem"]
    ):
        raise SymbiError(
            ErrorCode.SCHEMA_005,
            "discovery document has no public_key_pem",
            offending=source,
            hint="a schemapin.json needs schema_version and public_key_pem",
        )
    return Discovery(
        domain=domain,
        public_key_pem=doc["public_key_pem"],
        source=source,
        developer_name=doc.get("developer_name"),
        revoked=_revoked_from_doc(doc),
    )


class KeyResolver:
    """Find a domain's key: trust bundle, then local files, then the well-known URL.

    ``local_files`` maps a domain to a discovery JSON file; ``local_dir`` holds
    ``DOMAIN.json`` files. ``allow_network`` False keeps everything offline.
    ``base_url`` overrides ``https://DOMAIN`` (tests serve 127.0.0.1).
    """

    def __init__(
        self,
        *,
        trust_bundle: str | Path | dict[str, Any] | None = None,
        local_files: dict[str, str | Path] | None = None,
        local_dir: str | Path | None = None,
        allow_network: bool = True,
        timeout: float = 10.0,
        base_urls: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        check_revocation_endpoint: bool = True,
    ) -> None:
        self._bundle_docs: dict[str, dict[str, Any]] = {}
        self._bundle_revoked: dict[str, set[str]] = {}
        if trust_bundle is not None:
            self._load_bundle(trust_bundle)
        self.local_files = {d: Path(p) for d, p in (local_files or {}).items()}
        self.local_dir = Path(local_dir) if local_dir else None
        self.allow_network = allow_network
        self.timeout = timeout
        self.base_urls = dict(base_urls or {})
        self._transport = transport
        self.check_revocation_endpoint = check_revocation_endpoint

    def _load_bundle(self, bundle: str | Path | dict[str, Any]) -> None:
        if not isinstance(bundle, dict):
            try:
                bundle = json.loads(Path(bundle).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SymbiError(
                    ErrorCode.SCHEMA_005, f"trust bundle unreadable: {exc}", offending=str(bundle)
                ) from exc
        for doc in bundle.get("documents", []) if isinstance(bundle, dict) else []:
            if isinstance(doc, dict) and isinstance(doc.get("domain"), str):
                self._bundle_docs[doc["domain"]] = {k: v for k, v in doc.items() if k != "domain"}
        for rev in bundle.get("revocations", []) if isinstance(bundle, dict) else []:
            if isinstance(rev, dict) and isinstance(rev.get("domain"), str):
                self._bundle_revoked.setdefault(rev["domain"], set()).update(_revoked_from_doc(rev))

    def add_document(self, domain: str, doc: dict[str, Any]) -> None:
        """Trust ``doc`` for ``domain`` as if it came from a bundle."""
        self._bundle_docs[domain] = dict(doc)

    async def resolve(self, domain: str) -> Discovery:
        """The domain's discovery; ``SCHEMA_005`` when none can be found."""
        if domain in self._bundle_docs:
            disc = _discovery_from_doc(domain, self._bundle_docs[domain], "bundle")
        elif domain in self.local_files or (self.local_dir and (self.local_dir / f"{domain}.json").exists()):
            # not in local_files: then the elif found it in local_dir, which is set
            path = self.local_files.get(domain) or cast(Path, self.local_dir) / f"{domain}.json"
            try:
                doc = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SymbiError(
                    ErrorCode.SCHEMA_005, f"discovery file unreadable: {exc}", offending=str(path)
                ) from exc
            disc = _discovery_from_doc(domain, doc, f"file:{path}")
        elif self.allow_network:
            disc = await self._fetch(domain)
        else:
            raise SymbiError(
                ErrorCode.SCHEMA_005,
                f"no key known for domain {domain} (network discovery is off)",
                offending=domain,
                hint="add the domain to the trust bundle or a local discovery file",
            )
        disc.revoked |= self._bundle_revoked.get(domain, set())
        return disc

    def _url(self, domain: str) -> str:
        base = self.base_urls.get(domain, f"https://{domain}")
        return base.rstrip("/") + WELL_KNOWN_PATH

    async def _get_json(self, client: httpx.AsyncClient, url: str) -> Any:
        resp = await client.get(url)
        resp.raise_for_status()
        if len(resp.content) > MAX_DISCOVERY_BYTES:
            raise ValueError(f"document over {MAX_DISCOVERY_BYTES} bytes")
        return resp.json()

    async def _fetch(self, domain: str) -> Discovery:
        url = self._url(domain)
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, follow_redirects=False
            ) as client:
                doc = await self._get_json(client, url)
                disc = _discovery_from_doc(domain, doc, url)
                endpoint = doc.get("revocation_endpoint") if isinstance(doc, dict) else None
                if (
                    self.check_revocation_endpoint
                    and isinstance(endpoint, str)
                    and endpoint.startswith(("https://", "http://127.0.0.1", "http://localhost"))
                ):
                    rev = await self._get_json(client, endpoint)
                    if isinstance(rev, dict):
                        disc.revoked |= _revoked_from_doc(rev)
        except SymbiError:
            raise
        except (httpx.HTTPError, ValueError) as exc:
            raise SymbiError(
                ErrorCode.SCHEMA_005,
                f"key discovery for {domain} failed: {type(exc).__name__}: {exc}",
                offending=url,
                hint="check the domain serves .well-known/schemapin.json, or use a trust bundle",
            ) from exc
        return disc


# -- verification with pinning -----------------------------------------------------


@dataclass
class VerificationResult:
    valid: bool
    domain: str
    fingerprint: str | None = None
    key_source: str | None = None
    pin_status: str | None = None  # "first_use" | "pinned" | "changed" | None
    developer_name: str | None = None
    error_code: str | None = None  # ErrorCode value
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SchemaVerifier:
    """Verify signed schemas against discovered keys and the TOFU key store."""

    def __init__(self, resolver: KeyResolver, keystore: Any | None = None, *, allow_tofu: bool = True) -> None:
        self.resolver = resolver
        self.keystore = keystore
        self.allow_tofu = allow_tofu

    async def check_signature(self, schema: Any, signature_b64: str, public_pem: str) -> tuple[bool, str | None]:
        """Is the signature valid for this key? (ok, reason when not). In-process by default."""
        return verify_signature(schema, signature_b64, public_pem), None

    async def verify(self, schema: Any, signature_b64: str | None, domain: str) -> VerificationResult:
        if not signature_b64:
            return VerificationResult(False, domain, error_code=ErrorCode.SCHEMA_002.value, error="no signature")
        try:
            disc = await self.resolver.resolve(domain)
        except SymbiError as exc:
            return VerificationResult(False, domain, error_code=exc.code.value, error=exc.message)
        try:
            fp = fingerprint(disc.public_key_pem)
        except SymbiError as exc:
            return VerificationResult(
                False, domain, key_source=disc.source, error_code=ErrorCode.SCHEMA_005.value, error=exc.message
            )
        base = VerificationResult(
            False, domain, fingerprint=fp, key_source=disc.source, developer_name=disc.developer_name
        )
        if fp in disc.revoked:
            return replace(base, valid=False, error_code=ErrorCode.SCHEMA_003.value, error=f"key {fp} is revoked")
        try:
            ok, why = await self.check_signature(schema, signature_b64, disc.public_key_pem)
        except SymbiError as exc:
            return replace(base, valid=False, error_code=exc.code.value, error=exc.message)
        if not ok:
            return replace(
                base, valid=False, error_code=ErrorCode.SCHEMA_002.value, error=why or "signature verification failed"
            )
        if self.keystore is None:
            return replace(base, valid=True, pin_status=None)
        # the signature is valid: only now may the key be pinned
        pinned = self.keystore.get(domain)
        if pinned is None:
            if not self.allow_tofu and disc.source != "bundle":
                return replace(
                    base,
                    valid=False,
                    error_code=ErrorCode.SCHEMA_004.value,
                    error="domain not pinned and trust-on-first-use is off",
                )
            self.keystore.pin(domain, disc.public_key_pem, source=disc.source, developer_name=disc.developer_name)
            return replace(base, valid=True, pin_status="first_use")
        if pinned["fingerprint"] == fp:
            return replace(base, valid=True, pin_status="pinned")
        if pinned["fingerprint"] in disc.revoked:
            # the old key was revoked by the domain itself: still needs a human to accept the new one
            pass
        self.keystore.record_key_change(domain, disc.public_key_pem, source=disc.source)
        return replace(
            base,
            valid=False,
            pin_status="changed",
            error_code=ErrorCode.SCHEMA_004.value,
            error=f"key for {domain} changed from {pinned['fingerprint']} to {fp}; blocked until the operator accepts it",
        )


class BinarySchemaVerifier(SchemaVerifier):
    """``[schemapin] binary_path``: the signature check runs an external verifier.

    The binary is called like the reference ``schemapin-verify``:
    ``BINARY --schema PACKAGE.json --public-key KEY.pem --exit-code`` where the
    package is ``{"schema": ..., "signature": ...}`` and the key is the one key
    discovery found for the domain (revocation and pinning stay here, so a bad
    signature still never pins a key). Its exit code decides: 0 valid, other
    invalid. It runs with ``timeout``, the engine's environment plus
    ``environment``, and its stderr (when ``capture_stderr``) goes into the
    reason. A binary that is missing, times out or cannot run is ``SCHEMA_007``.
    """

    def __init__(
        self,
        binary_path: str,
        resolver: KeyResolver,
        keystore: Any | None = None,
        *,
        allow_tofu: bool = True,
        timeout: float = 30.0,
        environment: dict[str, str] | None = None,
        capture_stderr: bool = True,
    ) -> None:
        super().__init__(resolver, keystore, allow_tofu=allow_tofu)
        self.binary_path = binary_path
        self.timeout = timeout
        self.environment = dict(environment or {})
        self.capture_stderr = capture_stderr

    def _binary(self) -> str:
        found = shutil.which(self.binary_path) if os.sep not in self.binary_path else self.binary_path
        if not found or not os.access(found, os.X_OK) or not os.path.isfile(found):
            raise SymbiError(
                ErrorCode.SCHEMA_007,
                f"SchemaPin verifier binary not found or not executable: {self.binary_path}",
                offending=self.binary_path,
                hint="fix [schemapin] binary_path, or unset it to use the built-in verifier",
            )
        return found

    async def check_signature(self, schema: Any, signature_b64: str, public_pem: str) -> tuple[bool, str | None]:
        binary = self._binary()
        with tempfile.TemporaryDirectory(prefix="schemapin-") as tmp:
            package, key = Path(tmp) / "signed.json", Path(tmp) / "public.pem"
            package.write_text(
                json.dumps({"schema": schema, "signature": signature_b64}, ensure_ascii=False), encoding="utf-8"
            )
            key.write_text(public_pem, encoding="utf-8")
            try:
                proc = await asyncio.create_subprocess_exec(
                    binary,
                    "--schema",
                    str(package),
                    "--public-key",
                    str(key),
                    "--exit-code",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE if self.capture_stderr else asyncio.subprocess.DEVNULL,
                    env={**os.environ, **self.environment},
                    start_new_session=True,  # its own process group: a timeout kills its children too
                )
            except OSError as exc:
                raise SymbiError(
                    ErrorCode.SCHEMA_007,
                    f"cannot run the SchemaPin verifier {binary}: {exc.strerror or exc}",
                    offending=binary,
                    hint="check [schemapin] binary_path",
                ) from exc
            try:
                out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
            except TimeoutError as exc:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
                raise SymbiError(
                    ErrorCode.SCHEMA_007,
                    f"the SchemaPin verifier {binary} did not finish within {self.timeout:g} s",
                    offending=binary,
                    hint="raise [schemapin] timeout or check the binary",
                ) from exc
        stderr = (err or b"").decode("utf-8", "replace").strip()[-2000:]
        if proc.returncode == 0:
            return True, None
        stdout = (out or b"").decode("utf-8", "replace").strip()[-500:]
        if proc.returncode is not None and proc.returncode < 0:
            raise SymbiError(
                ErrorCode.SCHEMA_007,
                f"the SchemaPin verifier {binary} was killed by signal {-proc.returncode}: {stderr}",
                offending=binary,
            )
        detail = stderr or stdout or "no output"
        return False, f"external verifier {Path(binary).name} exited {proc.returncode}: {detail}"
