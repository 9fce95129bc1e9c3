"""What the commands that write a model file say about compiling it to LiteRT beside it."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand


def compile_beside(command: BaseCommand, model_path: str | Path) -> None:
    """Compile ``model_path`` to LiteRT beside it, time it into the model card beside it, and say so; a
    model that does not compile still ships, and only the Keras backend (EMOTIONS_BACKEND) can serve it."""
    from emotions.compile import CompileError, compile_model

    try:
        compiled = compile_model(model_path)
    except CompileError as exc:
        command.stderr.write(command.style.WARNING(f"not compiled to LiteRT: {exc}"))
        return
    command.stdout.write(command.style.SUCCESS(compiled.summary()))
    from training.services import model_card_serving_cost

    cost = model_card_serving_cost(compiled=compiled)
    command.stdout.write(
        f"serving cost: {cost['batch_1_ms_per_face']:.2f} ms per face alone, "
        f"{cost['batch_32_ms_per_face']:.2f} ms in a batch of 32 ({cost['machine']}); in the model card"
    )
