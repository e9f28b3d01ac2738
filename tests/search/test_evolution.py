"""The evolution sampler (search.evolution): a child is one of the best trials moved a step or two along
one or two choices, never a candidate the study has tried; before the population fills, random draws."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import IntDistribution

from search.evolution import EvolutionSampler
from search.samplers import DEFAULT_SAMPLER, PARETO_SAMPLER, default_sampler, make_sampler

DIMS = {f"x{i}": IntDistribution(0, 9) for i in range(6)}


def value(p: dict[str, int]) -> float:
    return float(sum((i + 1) * v for i, v in enumerate(p[k] for k in sorted(p))))


def run(sampler: optuna.samplers.BaseSampler, trials: int, budget: float = 60.0) -> optuna.Study:
    """Maximise a weighted sum under a budget on the plain sum: the best sit on the budget's edge."""
    study = optuna.create_study(sampler=sampler, direction="maximize")
    for _ in range(trials):
        t = study.ask(DIMS)
        over = sum(t.params.values()) - budget / 2
        t.set_constraint("over", over)  # as search.worker records a budget
        study.tell(t, value(t.params))
    return study


@pytest.fixture(autouse=True)
def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_children_are_small_moves_of_good_trials_never_repeats() -> None:
    population = 8
    study = run(EvolutionSampler(seed=0, population=population), 120)
    trials = study.get_trials()
    seen = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(seen)) == len(seen)  # never a candidate twice
    for t in trials[population:]:
        before = trials[:t.number]
        steps = [sorted(abs(t.params[k] - b.params[k]) for k in DIMS) for b in before]
        assert any(s[-1] <= 2 and sum(1 for d in s if d) <= 2 for s in steps), t.params  # a neighbour's child


def test_the_best_beats_random_search_on_a_budget_edge() -> None:
    def best(study: optuna.Study) -> float:
        ok = [t.value for t in study.trials if all(c <= 0 for c in t.constraints.values())]
        return max(ok)

    evolution = [best(run(EvolutionSampler(seed=s, population=16), 300)) for s in range(3)]
    random = [best(run(optuna.samplers.RandomSampler(seed=s), 300)) for s in range(3)]
    assert min(evolution) > max(random)


def test_defaults() -> None:
    assert DEFAULT_SAMPLER == "nsga2" == default_sampler(("score",))
    assert default_sampler(("score",), sizes_searched=True) == "evolution"
    assert default_sampler(("score", "latency")) == PARETO_SAMPLER == default_sampler(("score", "latency"),
                                                                                     sizes_searched=True)
    assert isinstance(make_sampler("evolution", 0, trials=1000), EvolutionSampler)
    with pytest.raises(ValueError, match="sampler must be one of evolution, nsga2, tpe, random"):
        make_sampler("cmaes", 0, trials=10)


def test_a_pareto_study_ranks_its_front_first() -> None:
    study = optuna.create_study(sampler=EvolutionSampler(seed=0, population=6), directions=["maximize", "minimize"])
    for _ in range(40):
        t = study.ask(DIMS)
        study.tell(t, [value(t.params), float(sum(t.params.values()))])
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 40
