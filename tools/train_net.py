#!/usr/bin/env python
"""Train and evaluate detectron2 models on generated timm backbones.

Two kinds of config, told apart by the file's extension:

- a YAML config (``configs/<family>/<model>_fpn.yaml``): detectron2's ``DefaultTrainer``
  with every generated backbone available by the name in the config: the module behind
  ``MODEL.BACKBONE.NAME`` is imported (and so registered) on demand through
  ``generated.ensure_registered``; the package is never imported whole. Overrides are
  ``KEY VALUE`` pairs.
- a LazyConfig (``configs/<family>/<model>_mask_rcnn.py``), trained as detectron2's
  ``tools/lazyconfig_train_net.py`` trains one: ``model``, ``optimizer``, ``dataloader``,
  ``lr_multiplier`` and ``train`` instantiated, ``SimpleTrainer`` (``AMPTrainer`` when
  ``train.amp.enabled`` on a GPU), checkpoints and evaluation in ``train.output_dir``.
  Overrides are ``key=value``, as detectron2's LazyConfig tools take them.

The embedded shapes datasets (``shapes_train``/``shapes_val``, ``shapes_tiny_*``; see
``tools/shapes_dataset.py``) are generated and registered when the config names them.

    # train (CPU), then evaluate at the end
    python tools/train_net.py --config-file configs/resnet/resnet18_fpn.yaml \\
        MODEL.DEVICE cpu DATASETS.TRAIN '("shapes_train",)' DATASETS.TEST '("shapes_val",)' \\
        MODEL.ROI_HEADS.NUM_CLASSES 3 OUTPUT_DIR out/r18
    # evaluate a checkpoint
    python tools/train_net.py --config-file out/r18/config.yaml --eval-only MODEL.WEIGHTS out/r18/model_final.pth
    # resume from the last checkpoint in OUTPUT_DIR
    python tools/train_net.py --config-file out/r18/config.yaml --resume
    # a LazyConfig: train (key=value overrides), evaluate a checkpoint, resume
    python tools/train_net.py --config-file configs/resnet/resnet18_mask_rcnn.py train.device=cpu \
        train.output_dir=out/r18-lazy
    python tools/train_net.py --config-file out/r18-lazy/config.yaml --eval-only \
        train.init_checkpoint=out/r18-lazy/model_final.pth
    python tools/train_net.py --config-file out/r18-lazy/config.yaml --resume
    # two processes on one machine (CPU: gloo; GPU: detectron2's launch, NCCL)
    python tools/train_net.py --num-gpus 2 --config-file ... MODEL.DEVICE cpu

Distributed runs: ``--num-gpus N`` is the number of processes per machine (one per GPU,
or N CPU processes with ``MODEL.DEVICE cpu``), with ``--num-machines``, ``--machine-rank``
and ``--dist-url`` as in detectron2. GPU runs go through ``detectron2.engine.launch``.
CPU runs use :func:`launch_cpu` here, because detectron2 v0.6's launcher insists on CUDA
and NCCL, and detectron2 main's picks NCCL whenever a GPU is visible, even for
``MODEL.DEVICE cpu``: it spawns the processes with ``torch.multiprocessing``, joins them
with ``init_process_group("gloo")``, and sets up detectron2's per-machine process group
as detectron2's ``_distributed_worker`` does. On CPU the model is wrapped in
``DistributedDataParallel`` without ``device_ids``.

Evaluation uses COCOEvaluator with ``use_fast_impl=False`` (the fast implementation
needs detectron2's compiled ops). Metrics go to the console and ``OUTPUT_DIR/metrics.json``
(no tensorboard). The AP figures of the last evaluation are also written to
``OUTPUT_DIR/results_final.json`` (training) or ``results_eval.json`` (``--eval-only``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `import generated` / `import tools` from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import LazyConfig, get_cfg, instantiate  # noqa: E402
from detectron2.data import MetadataCatalog  # noqa: E402
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, default_argument_parser  # noqa: E402
from detectron2.engine import default_setup, hooks  # noqa: E402
from detectron2.engine import launch as d2_launch  # noqa: E402
from detectron2.evaluation import COCOEvaluator, inference_on_dataset, print_csv_format, verify_results  # noqa: E402
from detectron2.utils import comm  # noqa: E402
from detectron2.utils.events import CommonMetricPrinter, JSONWriter  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

from tools import shapes_dataset  # noqa: E402

__all__ = [
    "Trainer",
    "argument_parser",
    "build_config",
    "is_lazy_config",
    "ensure_backbone",
    "import_generated",
    "launch",
    "launch_cpu",
    "main",
    "setup",
]

logger = logging.getLogger("d2timm.train_net")

DEFAULT_PACKAGE = "generated"
DEFAULT_TIMEOUT = timedelta(minutes=30)
RESULTS_TRAIN = "results_final.json"
RESULTS_EVAL = "results_eval.json"


# ------------------------------------------------------------------ backbones


def import_generated(package: str = DEFAULT_PACKAGE, root: str | os.PathLike | None = None):
    """Import a generated package (``generated`` by default, or one that d2timm-gen wrote
    under ``root``). Importing it imports no model module."""
    import importlib

    if root is not None:
        root = str(Path(root).resolve())
        if root not in sys.path:
            sys.path.insert(0, root)
    return importlib.import_module(package)


def generated_runtime(model):
    """The ``runtime`` of the generated package whose backbones ``model`` holds, or None."""
    import importlib

    for module in model.modules():
        for base in type(module).__mro__:
            if base.__name__ == "TimmBackbone" and base.__module__.endswith(".runtime.backbone"):
                return importlib.import_module(base.__module__.rsplit(".", 1)[0])
    return None


def ensure_backbone(cfg, package: str = DEFAULT_PACKAGE, root=None) -> str:
    """Make ``cfg.MODEL.BACKBONE.NAME`` available in detectron2's BACKBONE_REGISTRY.

    A name already registered (one of detectron2's own backbones, or one a generated
    package registered before) is used as it is; otherwise the generated package's
    ``ensure_registered`` imports the one module that defines it. Returns where it came
    from ("registry" or the package name).
    """
    from detectron2.modeling import BACKBONE_REGISTRY

    name = cfg.MODEL.BACKBONE.NAME
    if name in BACKBONE_REGISTRY:
        return "registry"
    generated = import_generated(package, root)
    if generated.ensure_registered(cfg):
        return package
    import difflib

    known = sorted(set(generated.BUILDERS) | {n for n, _ in BACKBONE_REGISTRY})
    close = difflib.get_close_matches(name, known, n=5)
    raise KeyError(
        f"MODEL.BACKBONE.NAME: {name!r} is neither a detectron2 backbone nor generated in "
        f"{package!r} ({len(generated.BUILDERS)} builders)."
        + (f" Did you mean: {', '.join(close)}?" if close else "")
    )


# ------------------------------------------------------------------ trainer


@contextlib.contextmanager
def _ddp_without_device_ids_on_cpu():
    """Let DefaultTrainer wrap a CPU model in DistributedDataParallel.

    detectron2's ``create_ddp_model`` passes ``device_ids=[local rank]``, which DDP
    rejects for a CPU module. While the trainer is built, a CPU model gets
    ``device_ids=None`` instead; anything else goes through unchanged.
    """
    from detectron2.engine import defaults

    original = defaults.create_ddp_model

    def create_ddp_model(model, **kwargs):
        if comm.get_world_size() > 1:
            device = next(iter(model.parameters()), torch.empty(0)).device
            if device.type == "cpu":
                kwargs.setdefault("device_ids", None)
        return original(model, **kwargs)

    defaults.create_ddp_model = create_ddp_model
    try:
        yield
    finally:
        defaults.create_ddp_model = original


class Trainer(DefaultTrainer):
    """DefaultTrainer with COCO evaluation that needs no compiled ops, console and JSON
    metrics only, and DistributedDataParallel on CPU."""

    def __init__(self, cfg):
        with _ddp_without_device_ids_on_cpu():
            super().__init__(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        evaluator_type = getattr(MetadataCatalog.get(dataset_name), "evaluator_type", None)
        if evaluator_type in ("coco", "coco_panoptic_seg", None):
            # The fast implementation needs detectron2._C (compiled), not always there.
            return COCOEvaluator(dataset_name, output_dir=output_folder, use_fast_impl=False)
        if evaluator_type == "lvis":
            from detectron2.evaluation import LVISEvaluator

            return LVISEvaluator(dataset_name, output_dir=output_folder)
        if evaluator_type == "sem_seg":  # semantic FPN and DeepLab seeds
            from detectron2.evaluation import SemSegEvaluator

            return SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder)
        raise NotImplementedError(
            f"no evaluator for dataset {dataset_name!r} of evaluator_type {evaluator_type!r}; "
            "tools/train_net.py evaluates COCO-style (and LVIS) datasets"
        )

    @classmethod
    def build_optimizer(cls, cfg, model):
        """detectron2's SGD from ``SOLVER``, with the parameter groups of the generated
        runtime's ``optimizer_params``: ``SOLVER.BACKBONE_LR_DECAY`` (layer-wise lr decay,
        1.0 = off) and no weight decay on the parameters timm exempts from it."""
        from detectron2.solver.build import maybe_add_gradient_clipping

        decay = cfg.SOLVER.get("BACKBONE_LR_DECAY", 1.0)
        runtime = generated_runtime(model)
        if runtime is None:
            if decay != 1.0:
                raise ValueError(
                    f"SOLVER.BACKBONE_LR_DECAY: {decay!r} needs a generated backbone, and "
                    f"{cfg.MODEL.BACKBONE.NAME} is not one; valid: 1.0"
                )
            return super().build_optimizer(cfg, model)
        params = runtime.optimizer_params(
            model,
            base_lr=cfg.SOLVER.BASE_LR,
            weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
            bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
            weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
            lr_decay=decay,
        )
        return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(
            params,
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        """detectron2's schedules, and the DeepLab project's WarmupPolyLR (its seeds' own)."""
        if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupPolyLR":
            from detectron2.projects.deeplab import build_lr_scheduler

            return build_lr_scheduler(cfg, optimizer)
        return super().build_lr_scheduler(cfg, optimizer)

    def build_writers(self):
        # No TensorboardXWriter: tensorboard is not a requirement.
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
        ]


# ------------------------------------------------------------------ config


def argument_parser():
    parser = default_argument_parser(
        epilog=__doc__.split("\n\n", 1)[1].split("\n\nDistributed runs")[0]
    )
    parser.add_argument(
        "--package",
        default=DEFAULT_PACKAGE,
        help="the generated package that provides MODEL.BACKBONE.NAME (default: %(default)s)",
    )
    parser.add_argument(
        "--package-root",
        default=None,
        metavar="DIR",
        help="directory that holds --package (d2timm-gen's --output); default: the repository",
    )
    parser.add_argument(
        "--shapes-root",
        default=None,
        metavar="DIR",
        help=f"cache of the embedded shapes datasets (default ${shapes_dataset.ROOT_ENV_VAR} "
        f"or {shapes_dataset.DEFAULT_ROOT})",
    )
    return parser


#: Top-level keys of a LazyConfig saved as YAML (``config.yaml`` in its output directory).
_LAZY_KEYS = re.compile(r"^(dataloader|model|optimizer|train):", re.MULTILINE)


def is_lazy_config(path) -> bool:
    """A LazyConfig: a Python file, or the YAML that a LazyConfig run saves (lower-case
    ``model:`` / ``train:`` / ``dataloader:`` at the top, where a detectron2 YAML config
    has ``MODEL:``). Anything else is read as a detectron2 YAML config."""
    path = str(path or "")
    if path.endswith(".py"):
        return True
    if not path.endswith((".yaml", ".yml")) or not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        return bool(_LAZY_KEYS.search(f.read()))


def add_project_config(cfg) -> None:
    """The keys of detectron2's DeepLab project (its ASPP head, poly schedule), which the
    DeepLab seeds set; detectron2 ships the project as ``detectron2.projects.deeplab``."""
    from detectron2.projects.deeplab import add_deeplab_config

    add_deeplab_config(cfg)


def build_config(args):
    """The config of a run: for a YAML config, detectron2's defaults, the generated
    backbones' keys, the file, then ``KEY VALUE`` overrides; for a LazyConfig, the file
    then ``key=value`` overrides."""
    if is_lazy_config(args.config_file):
        if args.package_root is not None:  # the LazyConfig imports its generated package
            import_generated(args.package, args.package_root)
        return LazyConfig.apply_overrides(LazyConfig.load(args.config_file), list(args.opts or []))
    generated = import_generated(args.package, args.package_root)  # imports no model module
    cfg = get_cfg()
    generated.add_timm_config(cfg)
    add_project_config(cfg)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    return cfg


def _lazy_dataset_names(cfg):
    """The datasets a LazyConfig's train and test loaders read (a name or a list each)."""
    names = []
    for loader in ("train", "test"):
        group = cfg.dataloader[loader].dataset.names
        names += [group] if isinstance(group, str) else list(group)
    return names


def setup(args):
    """Config, logging and output directory, datasets and backbone for this process."""
    cfg = build_config(args)
    if is_lazy_config(args.config_file):
        default_setup(cfg, args)
        setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="d2timm")
        shapes_dataset.register_for_datasets(_lazy_dataset_names(cfg), root=args.shapes_root)
        return cfg
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="d2timm")
    shapes_dataset.register_for_config(cfg, root=args.shapes_root)
    before = set(sys.modules)
    source = ensure_backbone(cfg, args.package, args.package_root)
    imported = sorted(m for m in set(sys.modules) - before if m.startswith(args.package + "."))
    logger.info(
        "backbone %s from %s%s",
        cfg.MODEL.BACKBONE.NAME,
        source,
        f" (imported {', '.join(imported)})" if imported else "",
    )
    return cfg


def _write_results(cfg, name: str, results, **extra) -> None:
    _write_results_to(cfg.OUTPUT_DIR, name, results, **extra)


def _write_results_to(output_dir, name: str, results, **extra) -> None:
    if not comm.is_main_process() or not output_dir:
        return

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        value = float(value)
        return None if math.isnan(value) else value

    path = os.path.join(output_dir, name)
    with open(path, "w") as f:
        json.dump(dict(results=plain(dict(results or {})), **extra), f, indent=1, sort_keys=True)
    logger.info("evaluation results written to %s", path)


# ------------------------------------------------------------------ LazyConfig runs


def _lazy_test(cfg, model):
    """Evaluate ``model`` on ``dataloader.test`` with ``dataloader.evaluator`` (COCO's
    slow implementation: the fast one needs detectron2's compiled ops)."""
    if "evaluator" not in cfg.dataloader:
        return {}
    evaluator = cfg.dataloader.evaluator
    if "COCOEvaluator" in str(evaluator.get("_target_", "")):
        evaluator.use_fast_impl = False
        evaluator.output_dir = evaluator.get("output_dir") or os.path.join(cfg.train.output_dir, "inference")
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(evaluator))
    if comm.is_main_process():
        print_csv_format(results)
    return results


def _lazy_model(cfg):
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    logger.info("model:\n%s", model)
    return model


def lazy_main(args, cfg):
    """detectron2's ``lazyconfig_train_net`` with the CPU and writer changes of the YAML path."""
    from detectron2.engine.defaults import create_ddp_model

    if args.eval_only:
        model = _lazy_model(cfg)
        model = create_ddp_model(model, device_ids=None if cfg.train.device == "cpu" else [comm.get_local_rank()])
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        results = _lazy_test(cfg, model)
        _write_results_to(cfg.train.output_dir, RESULTS_EVAL, results, weights=cfg.train.init_checkpoint)
        return results

    model = _lazy_model(cfg)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    loader = instantiate(cfg.dataloader.train)
    ddp = dict(cfg.train.ddp)
    if cfg.train.device == "cpu":
        ddp["device_ids"] = None
    model = create_ddp_model(model, **ddp)
    amp = cfg.train.amp.enabled and cfg.train.device != "cpu"
    if cfg.train.amp.enabled and not amp:
        logger.info("train.amp.enabled: mixed precision needs a GPU; training in float32 on the CPU")
    trainer = (AMPTrainer if amp else SimpleTrainer)(model, loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    results = {}

    def evaluate():
        results.clear()
        results.update(_lazy_test(cfg, model))
        return results

    writers = [
        CommonMetricPrinter(cfg.train.max_iter),
        JSONWriter(os.path.join(cfg.train.output_dir, "metrics.json")),
    ]
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
            hooks.EvalHook(cfg.train.eval_period, evaluate),
            hooks.PeriodicWriter(writers, period=cfg.train.log_period) if comm.is_main_process() else None,
        ]
    )
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    start_iter = trainer.iter + 1 if args.resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    if results:
        _write_results_to(cfg.train.output_dir, RESULTS_TRAIN, results, iterations=trainer.iter)
    return results


def main(args):
    cfg = setup(args)
    if is_lazy_config(args.config_file):
        return lazy_main(args, cfg)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        _write_results(cfg, RESULTS_EVAL, results, weights=cfg.MODEL.WEIGHTS)
        return results

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    results = getattr(trainer, "_last_eval_results", None)
    if results is not None:
        _write_results(cfg, RESULTS_TRAIN, results, iterations=trainer.iter)
        if len(cfg.TEST.EXPECTED_RESULTS) and comm.is_main_process():
            verify_results(cfg, results)
    return results


# ------------------------------------------------------------------ launching


def _find_free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _create_local_process_group(processes_per_machine: int) -> None:
    """detectron2's per-machine process group (``comm.get_local_rank`` needs it)."""
    if hasattr(comm, "create_local_process_group"):  # detectron2 main
        comm.create_local_process_group(processes_per_machine)
        return
    assert comm._LOCAL_PROCESS_GROUP is None  # detectron2 v0.6 sets the attribute itself
    world_size = dist.get_world_size()
    for machine in range(world_size // processes_per_machine):
        ranks = list(range(machine * processes_per_machine, (machine + 1) * processes_per_machine))
        group = dist.new_group(ranks)
        if machine == dist.get_rank() // processes_per_machine:
            comm._LOCAL_PROCESS_GROUP = group


def _cpu_worker(local_rank, main_func, world_size, processes_per_machine, machine_rank, dist_url, args, timeout):
    global_rank = machine_rank * processes_per_machine + local_rank
    # Share the cores: N processes with all cores' threads each would oversubscribe.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // processes_per_machine))
    try:
        dist.init_process_group(
            backend="gloo", init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
        )
    except Exception:
        logger.error("process group URL: %s", dist_url)
        raise
    try:
        _create_local_process_group(processes_per_machine)
        comm.synchronize()
        main_func(*args)
        comm.synchronize()
    finally:
        dist.destroy_process_group()


def launch_cpu(
    main_func,
    processes_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args=(),
    timeout: timedelta = DEFAULT_TIMEOUT,
):
    """Run ``main_func(*args)`` in ``processes_per_machine`` CPU processes on this
    machine, joined over all machines by torch.distributed with the gloo backend.

    The CPU twin of ``detectron2.engine.launch``; same arguments. ``dist_url="auto"``
    picks a free local port (one machine only).
    """
    import torch.multiprocessing as mp

    world_size = num_machines * processes_per_machine
    if world_size == 1:
        return main_func(*args)
    if dist_url is None or dist_url == "auto":
        if num_machines > 1:
            raise ValueError("--dist-url auto works on one machine only; give tcp://HOST:PORT of machine 0")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.start_processes(
        _cpu_worker,
        nprocs=processes_per_machine,
        args=(main_func, world_size, processes_per_machine, machine_rank, dist_url, args, timeout),
        daemon=False,
        start_method="spawn",
    )


def launch(main_func, args):
    """Run ``main_func(args)`` with the processes ``args`` ask for: CPU processes over
    gloo when the config's MODEL.DEVICE is the CPU, detectron2's launch otherwise."""
    world_size = args.num_gpus * args.num_machines
    device = "cpu"
    if world_size > 1:
        cfg = build_config(args)
        device = cfg.train.device if is_lazy_config(args.config_file) else cfg.MODEL.DEVICE
    on_cpu = device == "cpu" or not torch.cuda.is_available()
    runner = launch_cpu if on_cpu else d2_launch
    return runner(
        main_func,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def invoke_main(argv=None) -> None:
    args = argument_parser().parse_args(argv)
    print("Command Line Args:", args)
    launch(main, args)


if __name__ == "__main__":
    invoke_main()
