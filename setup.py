"""edged: edge video analytics daemon (camera streams -> object detector -> MQTT)."""

from setuptools import find_packages, setup

setup(
    name="edged",
    version="0.1.0",
    description="Edge video analytics daemon: camera streams -> INT8 object detector -> MQTT",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # What the tests run on: 3.10 (JetPack 6's; scripts/test.sh runs the unit tests there too), 3.11 (the
    # suite; Raspberry Pi OS 12 and Debian 12), 3.13 (scripts/test-pythons.sh).
    python_requires=">=3.10,<3.14",
    packages=find_packages(include=["edged", "edged.*"]),
    package_data={"edged": ["data/*.yaml", "py.typed", "service/static/*"]},
    install_requires=[
        # JetPack 6 ships numpy 1.21 (Ubuntu 22.04), which its TensorRT, pycuda and OpenCV are built for.
        "numpy>=1.21",
        # 5.x has no Darknet reader and changes the Python API; 4.x is what edge boards ship.
        "opencv-python-headless>=4.8,<5",
        "paho-mqtt>=2.0,<3",
        "pydantic>=2.5,<3",
        "PyYAML>=6.0",
        "onnx>=1.14",
        "prometheus-client>=0.17",
        # /healthz, /metrics: a kept HTTP parser (the hand-written one crashed on malformed requests).
        "aiohttp>=3.9,<4",
        # Network streams: per-container open/read timeouts and no process-wide open lock (OpenCV's has one).
        "av>=12",
    ],
    extras_require={
        "openvino": ["openvino>=2024.0"],
        "onnxruntime": ["onnxruntime>=1.16"],
        # A remote engine over KServe v2 / the Open Inference Protocol (Triton, OpenVINO Model Server, KServe).
        "remote": ["tritonclient[grpc]>=2.40"],
        # INT8 quantization; an Ultralytics .pt is exported in its own environment (see README).
        "export": ["openvino>=2024.0", "nncf>=2.9"],
        # ``edged bench`` plots; the Ultralytics peer gets a virtualenv of its own.
        "bench": ["matplotlib>=3.6"],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.2",
            "ruff>=0.5",
            "mypy>=1.10",
            "cryptography>=41",
            "types-PyYAML",
            # The web page's test drives Debian's chromium (no browser download).
            "playwright>=1.40",
        ],
    },
    entry_points={"console_scripts": ["edged=edged.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Topic :: Multimedia :: Video",
    ],
)
