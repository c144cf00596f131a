"""A remote engine: the KServe v2 / Open Inference Protocol over gRPC (Triton, OpenVINO Model Server, KServe,
MLServer), with ``tritonclient``.

The server runs the same model edged runs locally, taking what the letterbox writes:
``[batch, H, W, 3]`` UINT8 BGR, and giving the raw head ``[batch, a, b]`` FP32
(``edged model export --remote`` writes it as ONNX for a model repository), so the
pre- and post-processing are edged's own, as for a local engine. ``start`` checks the
server is live, the model (``model_name``, ``model_version``) is ready, and its input
and output match; each failure is one line (unreachable, unknown model with the ones the
server has, wrong shape, a TLS handshake that fails). Requests are asynchronous, at most
``num_requests`` in flight (one per input buffer), each with ``timeout_s``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from edged.artifacts.info import ModelInfo
from edged.config.models import KServeConfig
from edged.engines.base import Done, InputSpec
from edged.errors import EngineError, ModelError

log = logging.getLogger(__name__)


class KServeEngine:
    def __init__(self, config: KServeConfig, model: ModelInfo, cache_dir: Path) -> None:
        self.config = config
        self.model = model
        self.name = config.model_name or model.name
        self.input_spec = InputSpec(config.batch, model.height, model.width)
        self.num_slots = config.num_requests or 2
        self.output_shape: tuple[int, ...] = ()
        self._client: Any = None
        self._inputs: list[np.ndarray] = []
        self._input_name = ""
        self._output_name = ""

    @property
    def where(self) -> str:
        return f"{'grpcs' if self.config.tls else 'grpc'}://{self.config.url}"

    def start(self) -> None:
        self._connect()
        self._inputs = [np.zeros(self.input_spec.shape, np.uint8) for _ in range(self.num_slots)]
        self._infer_now()  # warm: the server loads lazily, and the first answer proves the whole path
        log.info("KServe engine ready: model %s%s on %s", self.name,
                 f" version {self.config.model_version}" if self.config.model_version else "", self.where)

    def reconnect(self) -> None:
        """A new channel, checked (the engine chain's probe): gRPC's own reconnects back off to minutes."""
        self.close()
        self._connect()

    def _connect(self) -> None:
        cfg = self.config
        tls = cfg.tls
        try:
            self._client = grpcclient.InferenceServerClient(
                cfg.url, ssl=tls is not None,
                root_certificates=str(tls.ca) if tls and tls.ca else None,
                private_key=str(tls.key) if tls and tls.key else None,
                certificate_chain=str(tls.cert) if tls and tls.cert else None)
            if not self._client.is_server_live(client_timeout=cfg.timeout_s):
                raise EngineError(f"the KServe server at {self.where} is not live")
            metadata = self._metadata()
        except InferenceServerException as exc:
            said = _said(exc)
            hint = ""
            if tls is not None and any(w in said.lower() for w in ("ssl", "handshake", "certificate", "tls")):
                hint = " (TLS: does engine.tls.ca sign the server's certificate, and does the server want a client " \
                       "certificate?)"
            elif tls is None and "unavailable" in said.lower():
                hint = " (is it running, and is this its gRPC port? a TLS-only server needs engine.tls)"
            raise EngineError(f"engine.url: cannot use the KServe server at {self.where}: {said}{hint}") from None
        self._check(metadata)

    def _metadata(self) -> Any:
        cfg = self.config
        try:
            return self._client.get_model_metadata(self.name, cfg.model_version, client_timeout=cfg.timeout_s)
        except InferenceServerException as exc:
            if "unavailable" in _said(exc).lower() or "deadline" in _said(exc).lower():
                raise
            raise ModelError(f"engine.model_name: the KServe server at {self.where} has no model '{self.name}'"
                              f"{' version ' + cfg.model_version if cfg.model_version else ''}"
                              f" ({self._known_models()})") from None

    def _known_models(self) -> str:
        """What the server lists, for the error; some restrict their repository protocol (PyTriton does)."""
        try:
            index = self._client.get_model_repository_index(client_timeout=self.config.timeout_s)
        except InferenceServerException:
            return "it does not list its models to this client"
        names = sorted({model.name for model in index.models})
        return f"it has: {', '.join(names)}" if names else "it lists none"

    def _check(self, metadata: Any) -> None:
        spec = self.input_spec
        if len(metadata.inputs) != 1 or len(metadata.outputs) < 1:
            raise ModelError(f"the model '{self.name}' on {self.where} has {len(metadata.inputs)} inputs and "
                              f"{len(metadata.outputs)} outputs; edged sends one image tensor")
        inp, out = metadata.inputs[0], metadata.outputs[0]
        dims = [int(d) for d in inp.shape]
        if inp.datatype != "UINT8" or dims[-3:] != [spec.height, spec.width, 3]:
            raise ModelError(f"the model '{self.name}' on {self.where} takes {inp.datatype} {dims}; edged sends "
                              f"UINT8 [batch, {spec.height}, {spec.width}, 3] BGR: serve the model that "
                              f"'edged model export --remote' writes")
        self._input_name, self._output_name = inp.name, out.name
        shape = [int(d) for d in out.shape]
        self.output_shape = (spec.batch, *shape[-2:])

    def _request(self, slot: int) -> tuple[list[Any], list[Any]]:
        tensor = grpcclient.InferInput(self._input_name, list(self.input_spec.shape), "UINT8")
        tensor.set_data_from_numpy(self._inputs[slot])
        return [tensor], [grpcclient.InferRequestedOutput(self._output_name)]

    def _infer_now(self) -> None:
        inputs, outputs = self._request(0)
        try:
            result = self._client.infer(self.name, inputs, model_version=self.config.model_version, outputs=outputs,
                                        client_timeout=self.config.timeout_s * 5)
        except InferenceServerException as exc:
            raise EngineError(f"the first inference on {self.where} failed: {_said(exc)}") from None
        got = result.as_numpy(self._output_name)
        if got is None or tuple(got.shape) != self.output_shape:
            raise EngineError(f"the model '{self.name}' on {self.where} answered with shape "
                              f"{None if got is None else got.shape}, not {self.output_shape}")

    def input_buffer(self, slot: int) -> np.ndarray:
        return self._inputs[slot]

    def submit(self, slot: int, done: Done) -> None:
        if self._client is None:
            raise EngineError("the KServe engine is not started")
        inputs, outputs = self._request(slot)
        name = self._output_name

        def answered(result: Any, error: InferenceServerException | None) -> None:  # a gRPC thread
            if error is not None:
                done(EngineError(f"{self.where}: {_said(error)}"))
                return
            out = result.as_numpy(name)
            done(out if out is not None else EngineError(f"{self.where}: no output '{name}' in the answer"))

        self._client.async_infer(self.name, inputs, answered, model_version=self.config.model_version,
                                 outputs=outputs, client_timeout=self.config.timeout_s)

    def describe(self) -> dict[str, Any]:
        return {"backend": "kserve", "device": self.where, "model": f"{self.name}"
                f"{' v' + self.config.model_version if self.config.model_version else ''}",
                "batch": self.input_spec.batch, "requests": self.num_slots}

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception as exc:  # closing a channel to a dead server
                log.debug("KServe client close: %s", exc)
            self._client = None


def _said(exc: InferenceServerException) -> str:
    text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    status = exc.status() if hasattr(exc, "status") and callable(exc.status) else ""
    line = " ".join(str(text).split())[:300]
    return f"{line} ({status})" if status and str(status) not in line else line
