"""The asset builder table: every asset kind has its builder, and a kind without one fails loudly
(a system check at start-up, and an error instead of a file of another kind) rather than being
built as whatever the last branch of an if/else made."""

from __future__ import annotations

import pytest
from django.core import checks

from video.models import VideoAsset
from video.services import assets


def test_every_asset_kind_has_a_builder():
    assert set(assets.ASSET_BUILDERS) == set(VideoAsset.Kind.values)
    assert assets.asset_builders_check() == []
    assert not [m for m in checks.run_checks() if m.id == "video.E001"]


def test_a_kind_without_a_builder_is_refused_by_the_system_check():
    messages = assets.asset_builders_check(kinds=[*VideoAsset.Kind.values, "waveform"])

    assert [(m.id, m.level) for m in messages] == [("video.E001", checks.ERROR)]
    assert "'waveform'" in messages[0].msg


def test_a_kind_without_a_builder_is_never_built_as_another_kind():
    with pytest.raises(assets.UnknownAssetKind, match="waveform"):
        assets.asset_builder("waveform")

    builders = {kind: assets.ASSET_BUILDERS[kind] for kind in [VideoAsset.Kind.STORYBOARD]}
    with pytest.raises(assets.UnknownAssetKind, match="preview_gif"):
        assets.asset_builder(VideoAsset.Kind.PREVIEW_GIF, builders)


@pytest.mark.django_db
def test_an_asset_row_of_an_unknown_kind_fails_instead_of_being_built(user, caplog):
    from video.models import VideoJob

    job = VideoJob.objects.create(user=user, filename="a.mp4", video_path="videos/x/a.mp4", status="completed")
    asset = VideoAsset.objects.create(job=job, kind="waveform")

    built = assets.video_asset_build(asset_id=asset.pk)

    assert built is not None
    assert (built.status, built.path) == ("failed", "")
    assert any("waveform" in record.getMessage() for record in caplog.records)
