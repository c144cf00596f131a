"""Prometheus metrics, read from a stats snapshot at scrape time (prometheus_client)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from edged.analytics.tamper import KINDS
from edged.pipeline.cpu import by_stage
from edged.pipeline.stats import BUCKETS_MS, CameraStats, EngineStats, Percentiles, Snapshot
from edged.publish.stats import PublisherStats
from edged.sources.state import CameraState
from edged.telemetry.power import power_reading

Scrape = Callable[[], tuple[dict[str, Any], Snapshot, int]]  # system probes, stats snapshot, governor level


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


def _observe(family: HistogramMetricFamily, labels: list[str], times: Percentiles) -> None:
    """A lifetime histogram kept in ms, exported in seconds (Prometheus' base unit)."""
    if not times.buckets:
        return
    cumulative, running = [], 0
    for bound, count in zip((*BUCKETS_MS, float("inf")), times.buckets, strict=True):
        running += count
        cumulative.append(("+Inf" if bound == float("inf") else f"{bound / 1000:g}", running))
    family.add_metric(labels, cumulative, times.sum_ms / 1000)


class PipelineMetrics(Collector):
    def __init__(self, scrape: Scrape) -> None:
        self.scrape = scrape

    def collect(self) -> Iterator[Metric]:
        system, snapshot, governor_level = self.scrape()
        yield from self._cameras(snapshot.pipeline.cameras)
        yield from self._engine(snapshot.pipeline.engine)
        yield from self._chain(snapshot.pipeline.engine)
        yield from self._mqtt(snapshot.mqtt)
        yield from self._system(system)
        yield self._cpu(snapshot.pipeline.timed_cpu_s)
        encodes = CounterMetricFamily("edged_jpeg_encodes", "Pictures for people, by kind: snapshot and live encoded, "
                                      "live_reused (served again), replaced (a newer snapshot came first)",
                                      labels=["kind"])
        for kind, count in snapshot.pipeline.encodes.items():
            encodes.add_metric([kind], count)
        yield encodes
        yield from self._looks(snapshot.pipeline.looks)
        level = _gauge("edged_governor_level", "Governor level (0: every camera at its configured rate)")
        level.add_metric([], governor_level)
        yield level

    def _cameras(self, stats: Mapping[str, CameraStats]) -> Iterator[Metric]:
        cameras = {name: camera.as_dict() for name, camera in stats.items()}
        counters = {
            "frames_read": "Frames received from the camera",
            "frames_decoded": "Frames decoded (converted and copied out of the decoder)",
            "frames_skipped": "Frames received but not decoded: the scheduler would not have used them",
            "frames_dropped": "Decoded frames replaced by a newer one before inference took them",
            "frames_processed": "Frames that went through the detector",
            "reconnects": "Times the camera was reopened after a failure",
        }
        for key, doc in counters.items():
            family = CounterMetricFamily(f"edged_camera_{key}", doc, labels=["camera"])
            for name, camera in cameras.items():
                family.add_metric([name], camera[key])
            yield family
        online = _gauge("edged_camera_online", "1 while the camera is online", ["camera"])
        age = HistogramMetricFamily("edged_camera_frame_age_seconds", "Capture-to-publish age of frames",
                                    labels=["camera"])
        governed = _gauge("edged_camera_governed_fps", "Rate cap set by the governor (absent: none)", ["camera"])
        for name, camera in cameras.items():
            online.add_metric([name], 1.0 if stats[name].state is CameraState.ONLINE else 0.0)
            _observe(age, [name], stats[name].age_ms)
            if camera["governed_fps"] is not None:
                governed.add_metric([name], camera["governed_fps"])
        yield from (online, age, governed)
        yield from self._motion(stats)

    @staticmethod
    def _motion(stats: Mapping[str, CameraStats]) -> Iterator[Metric]:
        looked = CounterMetricFamily("edged_camera_gate_frames", "Due frames by what the motion gate did with them",
                                     labels=["camera", "verdict"])
        moving = _gauge("edged_camera_motion", "1 while the camera sees motion", ["camera"])
        tamper = _gauge("edged_camera_tamper", "1 while a tamper alert fires", ["camera", "kind"])
        for name, camera in stats.items():
            motion = camera.motion
            if motion is None:
                continue
            for verdict, count in (("inferred", motion.inferred), ("gated", motion.gated)):
                looked.add_metric([name, verdict], count)
            moving.add_metric([name], 1.0 if motion.active else 0.0)
            for kind in KINDS:
                tamper.add_metric([name, kind], 1.0 if kind in motion.tamper else 0.0)
        yield from (looked, moving, tamper)

    def _engine(self, stats: EngineStats) -> Iterator[Metric]:
        engine = stats.as_dict()
        batches = CounterMetricFamily("edged_engine_batches", "Batches inferred")
        batches.add_metric([], engine["batches"])
        frames = CounterMetricFamily("edged_engine_frames", "Frames inferred")
        frames.add_metric([], engine["frames"])
        fill = _gauge("edged_engine_batch_fill", "Average share of each batch holding a frame")
        fill.add_metric([], engine["batch_fill"] or 0.0)
        in_flight = _gauge("edged_engine_in_flight", "Batches formed and not yet published")
        in_flight.add_metric([], engine["in_flight"])
        non_finite = CounterMetricFamily("edged_engine_non_finite_frames",
                                         "Frames whose engine output held NaN or inf (their detections not published)")
        non_finite.add_metric([], engine["non_finite"])
        yield from (batches, frames, fill, in_flight, non_finite)
        for stage, times in (("pre", stats.pre_ms), ("infer", stats.infer_ms), ("post", stats.post_ms)):
            family = HistogramMetricFamily(f"edged_engine_{stage}_seconds", f"Per-batch {stage} time")
            _observe(family, [], times)
            yield family

    def _chain(self, engine: EngineStats) -> Iterator[Metric]:
        chain = engine.settings.get("chain")
        if not chain:
            return
        in_use = _gauge("edged_engine_in_use", "1 for the engine of the chain that runs inference now", ["engine"])
        for name in chain:
            in_use.add_metric([str(name)], 1.0 if name == engine.settings.get("in_use") else 0.0)
        yield in_use

    def _cpu(self, timed: Mapping[str, Mapping[str, float]]) -> Metric:
        family = CounterMetricFamily("edged_cpu_seconds", "CPU time of the daemon's live threads by pipeline stage",
                                     labels=["stage"])
        for stage, seconds in by_stage(timed).items():
            family.add_metric([stage], seconds)
        return family

    def _looks(self, looks: Mapping[str, Mapping[str, float]]) -> Iterator[Metric]:
        if not looks:
            return
        families = {key: CounterMetricFamily(f"edged_looks_{key}", text, labels=["look"]) for key, text in (
            ("crops", "Crops a second look took, by look (classify:<classifier>, verify, colors)"),
            ("batches", "Batches a second look ran"),
            ("skipped", "Crops not taken: the look's tray was full"),
            ("seconds", "Seconds a second look's model ran (inference and answers)"))}
        verdicts = CounterMetricFamily("edged_looks_verdicts", "What second looks decided, per camera: confirmed and "
                                       "rejected new objects, late verdicts, sub-labels given",
                                       labels=["camera", "verdict"])
        for name, counts in looks.items():
            if name.startswith("camera:"):
                for verdict, count in counts.items():
                    verdicts.add_metric([name.removeprefix("camera:"), verdict], count)
                continue
            for key, family in families.items():
                family.add_metric([name], counts.get(key, 0.0))
        yield from families.values()
        yield verdicts

    def _mqtt(self, mqtt: PublisherStats) -> Iterator[Metric]:
        connected = _gauge("edged_mqtt_connected", "1 while connected to the broker")
        connected.add_metric([], 1.0 if mqtt.connected else 0.0)
        sent = CounterMetricFamily("edged_mqtt_detections_sent", "Detection messages handed to the broker")
        sent.add_metric([], mqtt.detections_sent)
        dropped = CounterMetricFamily("edged_mqtt_detections_dropped", "Detection messages not sent", labels=["reason"])
        dropped.add_metric(["offline"], mqtt.detections_dropped_offline)
        dropped.add_metric(["backlog"], mqtt.detections_dropped_backlog)
        yield from (connected, sent, dropped)

    def _system(self, system: dict[str, Any]) -> Iterator[Metric]:
        temp = _gauge("edged_device_temperature_celsius", "The device temperature edged governs by", ["zone"])
        if system.get("temp_c") is not None:
            temp.add_metric([str(system.get("temp_zone"))], system["temp_c"])
        zones = _gauge("edged_thermal_zone_celsius", "Every readable thermal zone", ["zone"])
        for zone, value in system.get("zones", {}).items():
            zones.add_metric([zone], value)
        cpu = _gauge("edged_cpu_percent", "CPU load since the previous sample", ["cpu"])
        for name, value in system.get("cpu_pct", {}).items():
            cpu.add_metric([name], value)
        yield from (temp, zones, cpu)
        memory = system.get("memory", {})
        if "used_pct" in memory:
            used = _gauge("edged_memory_used_percent", "System memory in use (GPU included on Jetson)")
            used.add_metric([], memory["used_pct"])
            available = _gauge("edged_memory_available_bytes", "System memory available")
            available.add_metric([], memory["available_mb"] * 1024 * 1024)
            yield from (used, available)
            if memory.get("process_rss_mb") is not None:
                rss = _gauge("edged_process_resident_bytes", "Resident memory of the daemon")
                rss.add_metric([], memory["process_rss_mb"] * 1024 * 1024)
                yield rss
        if system.get("gpu_pct") is not None:
            gpu = _gauge("edged_gpu_percent", "Integrated GPU load")
            gpu.add_metric([], system["gpu_pct"])
            yield gpu
        throttle = system.get("throttle")
        if throttle is not None:
            bits = _gauge("edged_throttle", "Raspberry Pi throttle bits (1: set)", ["bit", "when"])
            for when in ("now", "since_boot"):
                for bit in ("under_voltage", "arm_frequency_capped", "throttled", "soft_temperature_limit"):
                    bits.add_metric([bit, when], 1.0 if bit in throttle[when] else 0.0)
            yield bits
        reading = power_reading(system)
        if reading is not None:  # inferences per joule: rate(edged_engine_frames_total[1m]) / this
            device = _gauge("edged_device_power_watts", "Power the device reports (what it covers: source)",
                            ["source"])
            device.add_metric([reading[1]], reading[0])
            yield device
        rails = system.get("tegrastats", {}).get("rails", {})
        if rails:
            power = _gauge("edged_power_watts", "Jetson power rails (current)", ["rail"])
            for name, rail in rails.items():
                power.add_metric([name], rail["current_mw"] / 1000)
            yield power


def make_registry(scrape: Scrape) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineMetrics(scrape))
    return registry
