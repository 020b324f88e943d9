"""The ERP Integrations tool's tabs and views, as the console names them in URLs."""

from __future__ import annotations

from dataclasses import dataclass

from topics.payloads import ItemStatus, ItemType


@dataclass(frozen=True)
class Tab:
    """A tab: its URL name, its title and the item types it lists."""

    name: str
    title: str
    item_types: tuple[ItemType, ...]


@dataclass(frozen=True)
class View:
    """A view of a tab: its URL name, its title and the status it lists."""

    name: str
    title: str
    status: ItemStatus


TABS: dict[str, Tab] = {
    tab.name: tab
    for tab in (
        Tab("jobs", "Jobs", (ItemType.PROJECT,)),
        Tab("commitments", "Commitments", (ItemType.COMMITMENT,)),
        Tab(
            "change-orders",
            "Change Orders",
            (ItemType.COMMITMENT_CHANGE_ORDER, ItemType.PRIME_CONTRACT_CHANGE_ORDER),
        ),
    )
}
VIEWS: dict[str, View] = {
    view.name: view
    for view in (
        View("ready-to-export", "Ready to Export", ItemStatus.READY_TO_EXPORT),
        View("failed-to-export", "Failed to Export", ItemStatus.FAILED_TO_EXPORT),
        View("exporting", "Exporting", ItemStatus.EXPORTING),
        View("synced", "Synced", ItemStatus.SYNCED),
        View("rejected", "Rejected", ItemStatus.REJECTED),
        View("retrieved", "Retrieved", ItemStatus.RETRIEVED),
        View("send-refused", "Refused at send", ItemStatus.SEND_REFUSED),
    )
}
#: Which decisions an item in each status offers (what the reaction table allows).
ACTIONS: dict[ItemStatus, tuple[str, ...]] = {
    ItemStatus.READY_TO_EXPORT: ("accept", "reject"),
    ItemStatus.FAILED_TO_EXPORT: ("retry", "reject"),
}


def tab_of(item_type: str) -> Tab:
    """The tab listing items of `item_type` (ValueError for an unknown type)."""
    kind = ItemType(item_type)
    return next(tab for tab in TABS.values() if kind in tab.item_types)
