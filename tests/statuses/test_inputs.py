"""`statuses.inputs`: which objects, at which generation, a revision was made from."""

from __future__ import annotations

from llmgw.core import objects, statuses


def test_inputs_list_the_gateway_then_every_bound_object_at_its_generation(
    world, gateway, provider, chain, generation
):
    raws = [
        generation(gateway("gw"), 3),
        generation(provider("b", "m"), 2),
        generation(provider("a", "n"), 9),
        generation(chain("c", "m", "n"), 1),
        provider("bad", type="nope"),
        provider("away", "z", namespace="other"),
    ]
    est, (outcome,) = world(*raws)
    gens = {objects.identity(r): r["metadata"].get("generation") for r in raws}
    assert statuses.inputs(gens, outcome.resolution.selected, est.gateways[0]) == [
        "LLMGateway default/gw@3",
        "FallbackChain default/c@1",
        "LLMProvider default/a@9",
        "LLMProvider default/b@2",
        "LLMProvider default/bad@0",
    ]


def test_an_object_without_a_known_generation_is_at_zero(world, gateway, provider):
    est, (outcome,) = world(gateway("gw"), provider("p", "m"))
    assert statuses.inputs({}, outcome.resolution.selected, est.gateways[0]) == [
        "LLMGateway default/gw@0",
        "LLMProvider default/p@0",
    ]


def test_inputs_do_not_depend_on_the_order_objects_came_in(world, gateway, provider, generation):
    raws = [generation(gateway("gw"), 1), *(generation(provider(n, n), i) for i, n in enumerate("xyz", 1))]
    gens = {objects.identity(r): r["metadata"]["generation"] for r in raws}
    listed = []
    for order in (raws, raws[::-1]):
        est, (outcome,) = world(*order)
        listed.append(statuses.inputs(gens, outcome.resolution.selected, est.gateways[0]))
    assert listed[0] == listed[1]
