"""The names equiscale stores in Optuna, and the only functions that write and read them.

These names are a public format (README "Storage"): users read them in notebooks, the analysis and
`status` read them here. Compute study `<family>/<budget>` and data study `data/<family>/<train_size>/<steps>`
(before data study v2: `data/<family>/<train_size>`) carry `StudyAttrs`; every COMPLETE trial carries the
attributes of `TrialRecord`; a FAIL trial carries `fail_reason`. A data study's intermediate values are per
epoch (step = epoch number).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from study.records import TrainResult, TrialPlan

# Study user attributes.
FAMILY, BUDGET, BATCH_SIZE, DATASET_KEY, TARGET_TRIALS, SETTINGS, LEASE = (
    "family", "budget", "batch_size", "dataset_key", "target_trials", "settings", "lease")
# Trial user attributes (the analysis contract).
PARAMS, SAMPLES, STEPS, FLOPS_USED, FLOPS_PER_SAMPLE, NOMINAL_FLOPS = (
    "params", "samples", "steps", "flops_used", "flops_per_sample", "nominal_flops")
VAL_LOSS, TEST_LOSS, TRAIN_LOSS = "val_loss", "test_loss", "train_loss"
WALL_SECONDS, EQUIVARIANCE_ERROR, NODE, SHAPE, LR, MEASURED_PARAMS, EPOCHS = (
    "wall_seconds", "equivariance_error", "node", "shape", "lr", "measured_params", "epochs")
FAIL_REASON = "fail_reason"
SEED = "seed"       # the trial's initialisation and minibatch seed: replicates of one point differ only in it
# Adaptive IsoFLOP studies (sampler "isoflop"): why the trial was proposed (coarse, extend, refine, lr, replicate)
# and the study's rule learning rate (the profile's; trials at other lrs are the lr sweep at the best point).
PHASE, RULE_LR = "phase", "rule_lr"
TRAIN_SECONDS = "train_seconds"   # the training loop's seconds alone (wall_seconds adds the final evaluation)
# Trials trained as one stacked group (`[resources] stack`): the numbers of the group's trials (absent: alone).
# A member's train_seconds/wall_seconds are its share of the group's (equal shares among the members alive).
STACKED_WITH = "stacked_with"
COMPILED = "compiled"   # True: trained through torch.compile (its train_seconds include compiling; absent: eager)
# Data studies only (a compute study has neither: absent `kind` means compute).
KIND, TRAIN_SIZE = "kind", "train_size"
COMPUTE, DATA = "compute", "data"   # the study kinds
# Which families the report's claims compare (study attribute, written from the study file; see `read_claims`).
CLAIMS = "claims"
CLAIM_EQUIVARIANT, CLAIM_BASELINES, CLAIM_AUGMENTED = "equivariant", "baselines", "augmented"
CLAIM_NO_TRANSLATION = "no_translation"   # the augmented family's variant without translations (absent: none)
# A key of SETTINGS: bodies per scene (the FLOP counts' sample; absent: DEFAULT_BODIES).
BODIES, DEFAULT_BODIES = "bodies", 4


def study_name(family: str, budget: float) -> str:
    """The Optuna study name of one (family, budget): `gatr/1e+12`."""
    return f"{family}/{budget:.0e}"


def data_study_name(family: str, train_size: int, steps: int | None = None) -> str:
    """The Optuna study name of one (family, training-set size, training length) of a data study:
    `data/gatr/4096/5000`; without `steps`, the one-length name of equiscale <= 0.3 (`data/gatr/4096`)."""
    base = f"data/{family}/{int(train_size)}"
    return base if steps is None else f"{base}/{int(steps)}"


@dataclass(frozen=True)
class StudyAttrs:
    """What a study says about itself: which family and budget, which data, and the settings it ran with."""

    family: str
    budget: float
    batch_size: int
    dataset_key: str
    target_trials: int
    settings: Mapping[str, Any] | None = None   # training settings that must match on resume (None: unknown)
    kind: str = COMPUTE         # COMPUTE: the budget is searched; DATA: a fixed shape on `train_size` scenes
    train_size: int = 0         # DATA: training scenes (the first of the training split); 0 for COMPUTE
    claims: Mapping[str, Any] | None = None   # which family is the equivariant one, its baselines (None: unknown)


def write_study_attrs(study, attrs: StudyAttrs) -> None:
    """Store `attrs` on an `optuna.Study` (a study created before `settings` existed keeps none; a compute
    study stores no `kind`/`train_size`, so its attributes are those of equiscale 0.1)."""
    for key, value in asdict(attrs).items():
        if value is not None and not (attrs.kind == COMPUTE and key in (KIND, TRAIN_SIZE)):
            study.set_user_attr(key, value)


def read_study_attrs(attrs: Mapping[str, Any]) -> StudyAttrs | None:
    """The StudyAttrs in a study's user attributes, or None for a study equiscale did not create."""
    if FAMILY not in attrs or BUDGET not in attrs:
        return None
    return StudyAttrs(
        family=str(attrs[FAMILY]), budget=float(attrs[BUDGET]),
        batch_size=int(attrs.get(BATCH_SIZE, 0)), dataset_key=str(attrs.get(DATASET_KEY, "")),
        target_trials=int(attrs.get(TARGET_TRIALS, 0)), settings=attrs.get(SETTINGS),
        kind=str(attrs.get(KIND, COMPUTE)), train_size=int(attrs.get(TRAIN_SIZE, 0)), claims=attrs.get(CLAIMS),
    )


@dataclass(frozen=True)
class Lease:
    """A driver's claim on a study (see `study.lease`): who, and until when (seconds since the epoch)."""

    owner: str
    host: str
    pid: int
    expires: float

    def live(self, now: float) -> bool:
        return self.expires > now


def write_lease(study, lease: Lease) -> None:
    """Store the driver lease of a study."""
    study.set_user_attr(LEASE, asdict(lease))


def read_lease(attrs: Mapping[str, Any]) -> Lease | None:
    """The study's `Lease`, or None when no driver ever held one."""
    raw = attrs.get(LEASE)
    return None if raw is None else Lease(**raw)


def trial_attrs(plan: TrialPlan, result: TrainResult) -> dict[str, Any]:
    """The user attributes of a COMPLETE trial: shape, N, D, steps, FLOPs, losses, time, node."""
    return {
        PARAMS: int(plan.params),
        SAMPLES: int(result.samples),
        STEPS: int(result.steps),
        FLOPS_USED: float(plan.flops),
        FLOPS_PER_SAMPLE: float(plan.forward_flops),
        NOMINAL_FLOPS: 3.0 * float(plan.forward_flops) * int(result.samples),
        VAL_LOSS: float(result.val_loss),
        TEST_LOSS: float(result.test_loss),
        TRAIN_LOSS: float(result.train_loss),
        WALL_SECONDS: float(result.wall_seconds),
        EQUIVARIANCE_ERROR: float(result.equivariance_error),
        NODE: str(result.node),
        SHAPE: dict(plan.shape),
        LR: float(plan.lr),
        MEASURED_PARAMS: int(result.params),
        SEED: int(plan.seed),
        TRAIN_SECONDS: float(result.train_seconds),
        EPOCHS: float(result.epochs),
        **({TRAIN_SIZE: int(plan.train_size)} if plan.train_size else {}),
        **({COMPILED: True} if plan.compile else {}),
    }


def write_trial_attrs(trial, attrs: Mapping[str, Any]) -> None:
    """Store the attributes of `trial_attrs` on an `optuna.Trial`."""
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


@dataclass(frozen=True)
class TrialRecord:
    """One stored COMPLETE trial as the analysis and `status` read it (missing attributes are None)."""

    number: int
    value: float | None
    params: float | None
    samples: float | None
    steps: int | None
    flops_used: float | None
    val_loss: float | None
    test_loss: float | None
    shape: dict | None
    lr: float | None
    epochs: float | None
    equivariance_error: float | None
    train_size: int | None = None   # data studies only
    nominal_flops: float | None = None   # 3 × forward × samples
    wall_seconds: float | None = None    # the run's measured seconds
    train_seconds: float | None = None   # the training loop's seconds (stored since 0.3; earlier trials: None)
    flops_per_sample: float | None = None  # forward FLOPs of one sample
    seed: int | None = None                # stored since replicates (0.3); earlier trials: None

    def loss(self, which: str) -> float | None:
        """`val_loss` or `test_loss` (val falls back to the trial's objective value)."""
        if which == VAL_LOSS:
            return self.val_loss if self.val_loss is not None else self.value
        return self.test_loss if which == TEST_LOSS else None


def read_trial(trial) -> TrialRecord:
    """The TrialRecord of a `FrozenTrial` (attributes it lacks are None)."""
    ua = trial.user_attrs

    def number(key: str, kind=float):
        value = ua.get(key)
        return None if value is None else kind(value)

    return TrialRecord(
        number=trial.number, value=trial.value, params=number(PARAMS), samples=number(SAMPLES),
        steps=number(STEPS, int), flops_used=number(FLOPS_USED), val_loss=number(VAL_LOSS),
        test_loss=number(TEST_LOSS), shape=ua.get(SHAPE), lr=number(LR), epochs=number(EPOCHS),
        equivariance_error=number(EQUIVARIANCE_ERROR), train_size=number(TRAIN_SIZE, int),
        nominal_flops=number(NOMINAL_FLOPS), wall_seconds=number(WALL_SECONDS), train_seconds=number(TRAIN_SECONDS),
        flops_per_sample=number(FLOPS_PER_SAMPLE), seed=number(SEED, int),
    )


def write_proposal(trial, *, phase: str, rule_lr: float) -> None:
    """Store on an adaptive study's `optuna.Trial` why it was proposed and the study's rule learning rate."""
    trial.set_user_attr(PHASE, phase)
    trial.set_user_attr(RULE_LR, float(rule_lr))


def read_proposal(attrs: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """(phase, rule learning rate) from a trial's user attributes (`write_proposal`); (None, None) for a trial of a
    study that was not adaptive (the analysis then treats every point as part of the IsoFLOP profile)."""
    phase, rule = attrs.get(PHASE), attrs.get(RULE_LR)
    return (None if phase is None else str(phase)), (None if rule is None else float(rule))


def write_stacked_with(trial, numbers: list[int]) -> None:
    """Store on an `optuna.Trial` the numbers of the trials of its stacked group (itself included)."""
    trial.set_user_attr(STACKED_WITH, [int(n) for n in numbers])


def write_fail_reason(trial, reason: str) -> None:
    """Store why a trial failed on an `optuna.Trial`."""
    trial.set_user_attr(FAIL_REASON, reason)


@dataclass(frozen=True)
class ClaimFamilies:
    """Which family the report's claims call equivariant, which are its baselines, and which baseline is the
    augmented one (None: none). The defaults are the flagship study's (DESIGN: GATr against a transformer
    with and without augmentation)."""

    equivariant: str = "gatr"
    baselines: tuple[str, ...] = ("transformer", "transformer-aug")
    augmented: str | None = "transformer-aug"
    no_translation: str | None = None   # the augmented family's variant without translations (data study v2)

    @property
    def plain(self) -> str | None:
        """The first baseline that is not the augmented one (claims 1 and 3 compare against it)."""
        return next((b for b in self.baselines if b != self.augmented), self.baselines[0] if self.baselines else None)

    def as_attr(self) -> dict[str, Any]:
        """The value stored under CLAIMS (`no_translation` only when named, so older storages read the same)."""
        out = {CLAIM_EQUIVARIANT: self.equivariant, CLAIM_BASELINES: list(self.baselines),
               CLAIM_AUGMENTED: self.augmented}
        return out if self.no_translation is None else {**out, CLAIM_NO_TRANSLATION: self.no_translation}


def read_claims(attrs: Mapping[str, Any]) -> ClaimFamilies | None:
    """The ClaimFamilies stored under CLAIMS in a study's user attributes, or None when none is stored.
    A stored value without `augmented` (or `no_translation`) has none; a malformed one raises ValueError."""
    raw = attrs.get(CLAIMS)
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get(CLAIM_EQUIVARIANT), str):
        raise ValueError(f"study attribute {CLAIMS!r} must be a table with a family name under "
                         f"{CLAIM_EQUIVARIANT!r}, got {raw!r}")
    baselines = raw.get(CLAIM_BASELINES, [])
    if isinstance(baselines, str) or not all(isinstance(b, str) for b in baselines):
        raise ValueError(f"study attribute {CLAIMS!r}: {CLAIM_BASELINES!r} must be a list of family names, "
                         f"got {baselines!r}")
    augmented, no_translation = raw.get(CLAIM_AUGMENTED), raw.get(CLAIM_NO_TRANSLATION)
    return ClaimFamilies(raw[CLAIM_EQUIVARIANT], tuple(baselines), augmented if isinstance(augmented, str) else None,
                         no_translation if isinstance(no_translation, str) else None)


def read_bodies(attrs: StudyAttrs) -> int:
    """Bodies per scene of a study (from its stored settings; DEFAULT_BODIES when not stored)."""
    settings = attrs.settings or {}
    return int(settings.get(BODIES, DEFAULT_BODIES)) if isinstance(settings, Mapping) else DEFAULT_BODIES
