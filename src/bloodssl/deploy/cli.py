"""``python -m bloodssl.deploy``: export a saved bundle to OpenVINO (fp32 or int8), and label
an npz split, a folder of images or an augmented stream into Parquet shards, here or on Ray.

    python -m bloodssl.deploy export models/cnn.pt models/cnn-int8.xml --int8 data/raw/bloodmnist.npz
    python -m bloodssl.deploy label models/cnn.pt data/raw/bloodmnist.npz labels/ --exported models/cnn-int8.xml
    python -m bloodssl.deploy label models/cnn.pt my_slides/ labels/ --ray --replicas 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

from bloodssl.deploy.backends import calibration_images, export_openvino
from bloodssl.deploy.bundle import Bundle
from bloodssl.deploy.predictor import label_images
from bloodssl.deploy.sources import AugmentedStream, ImageFolder, ImageSource, NpzImages
from bloodssl.deploy.spec import PredictorSpec


def source_of(path: Path, split: str, augmented: int | None, seed: int, channels: int = 3,
              crop: float | None = None) -> ImageSource:  # fmt: skip
    """An npz split or a folder of images (read as ``channels``-channel images, cut to their
    central ``crop`` fraction); with ``augmented``, that many augmented copies of the npz split."""
    if path.suffix != ".npz":
        if augmented is not None:
            raise ValueError("--augmented repeats the images of an npz split; pass an .npz file as the source")
        return ImageFolder(path, channels=channels, crop=crop)
    source = NpzImages(path, split)
    return source if augmented is None else AugmentedStream(source.images, augmented, seed=seed)


def peak_memory_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` of ``/proc/self/status`` where there is
    one (Linux; unlike ``ru_maxrss`` it does not carry over the parent's peak from before
    ``exec``), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m bloodssl.deploy", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = cli.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a bundle's network as an OpenVINO model")
    export.add_argument("bundle", type=Path)
    export.add_argument("xml", type=Path, help="the .xml to write (its .bin goes beside it)")
    export.add_argument("--int8", type=Path, metavar="NPZ", help="quantise to int8, calibrated on its train images")
    export.add_argument("--calibration", type=int, default=2000, help="train images that calibrate int8")
    label = commands.add_parser("label", help="label images into Parquet shards")
    label.add_argument("bundle", type=Path)
    label.add_argument("source", type=Path, help="an .npz (MedMNIST layout) or a folder of PNG/JPEG files")
    label.add_argument("out", type=Path, help="the folder of shards (resumed if it holds this run's)")
    label.add_argument("--exported", help="an OpenVINO .xml of the bundle (default: torch fp32)")
    label.add_argument("--split", default="test", help="the npz split to label (default test)")
    label.add_argument("--crop", type=float, help="keep each file's central fraction before resizing (raw PBC "
                       "360 px images: 0.556, the 200 px BloodMNIST was cut from)")  # fmt: skip
    label.add_argument("--augmented", type=int, metavar="N", help="label N augmented copies of the split's images")
    label.add_argument("--seed", type=int, default=0, help="seed of --augmented")
    label.add_argument("--threshold", type=float, default=0.9, help="confidence at which a label is accepted")
    label.add_argument("--embeddings", action="store_true", help="store each image's embedding too")
    label.add_argument("--shard-size", type=int, default=16_384)
    label.add_argument("--threads", type=int, default=2, help="threads per predictor")
    label.add_argument("--ray", action="store_true", help="run on Ray Data (pip install -e .[scale])")
    label.add_argument("--address", help="a Ray cluster's address (default: a local Ray for this job)")
    label.add_argument("--replicas", type=int, help="model replicas on Ray (default: this machine's cores / threads)")
    label.add_argument("--quiet", action="store_true", help="no progress bar")
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "export":
        bundle = Bundle.load(args.bundle)
        calibration = None if args.int8 is None else calibration_images(NpzImages(args.int8, "train").images,
                                                                         args.calibration)  # fmt: skip
        channels = bundle.model.mean.numel()
        print(export_openvino(bundle.model, args.xml, calibration, (28, 28, channels)))
        return
    channels = Bundle.load(args.bundle).model.mean.numel()  # a grey dataset's network reads grey files
    source = source_of(args.source, args.split, args.augmented, args.seed, channels, args.crop)
    spec = PredictorSpec(str(args.bundle), args.exported, args.threshold, args.embeddings, args.threads)
    if args.ray:
        from bloodssl.scale.labelling import label_images_on_ray

        replicas = args.replicas or max(1, len(os.sched_getaffinity(0)) // args.threads)
        summary = label_images_on_ray(spec, source, args.out, args.shard_size, replicas, args.threads, args.address)
    else:
        summary = label_images(spec.build(), source, args.out, args.shard_size, progress=not args.quiet)
    print(json.dumps({**summary, "peak_rss_mib": peak_memory_mib()}, indent=2))
