"""Figures of cecu2si2, each drawn from saved arrays and tables (no fitting here)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from reprise.papers.cecu2si2 import momentum
from reprise.papers.cecu2si2.dispersion import band_center, edc_model
from reprise.papers.cecu2si2.hybridisation import lower_band
from reprise.papers.cecu2si2.lattice import points, zone_sections
from reprise.papers.cecu2si2.lineshapes import peak_on_line

COLORS = {"x": "C3", "z": "C0"}  # the simulated beamtime's bands; others by their order
LABELS = {"x": "X band (quasi-2D electron)", "z": "Z pockets (3D hole)"}


def _color(band: str, names) -> str:
    names = list(names)
    return COLORS.get(band, f"C{(names.index(band) + 4) % 10}")


def _label(band: str) -> str:
    return LABELS.get(band, f"band {band}")


def _zone(ax, crystal, origin, u, v, extent):
    for poly in zone_sections(crystal["a"], crystal["c"], origin, u, v, extent):
        closed = np.vstack([poly, poly[:1]])
        ax.plot(closed[:, 0], closed[:, 1], color="w", lw=0.8, alpha=0.9)


def fermi_surface(ds, crystal, v0):
    """The symmetrised map at E_F with the zone cut at the map's normal-emission kz."""
    k = ds["kx"].values
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(
        ds["symmetrised"].values,
        origin="lower",
        extent=[k[0], k[-1], k[0], k[-1]],
        cmap="magma",
        interpolation="nearest",
    )
    title = f"Fermi surface, hν = {ds.attrs['hv']:g} eV"
    if np.isfinite(v0["V0"]):
        ekin = momentum.kinetic_energy(ds.attrs["hv"], ds.attrs["work_function"], 0.0)
        kz = float(momentum.kz(ekin, 0.0, v0["V0"]))
        _zone(ax, crystal, [0, 0, kz], [1, 0, 0], [0, 1, 0], (k[0], k[-1], k[0], k[-1]))
        title += f"\nzone at kz = {kz:.2f} Å⁻¹ (V0 = {v0['V0']:.1f} eV)"
    x = points(crystal["a"], crystal["c"])["X"]
    ax.plot([x[0]], [x[1]], "w+", ms=8)
    ax.annotate("X", (x[0], x[1]), color="w", xytext=(4, 4), textcoords="offset points")
    ax.set(
        xlabel="kx (Å⁻¹)", ylabel="ky (Å⁻¹)", title=title, xlim=(k[0], k[-1]), ylim=(k[0], k[-1])
    )
    ax.grid(False)
    return fig


def kz_map(ds, crystal):
    """Intensity at E_F over (k∥, kz) from the photon-energy scan, with the zone section."""
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    kp, kz = ds["k_par"].values, ds["kz"].values
    ax.pcolormesh(kp, kz, ds["intensity"].values, cmap="magma", shading="nearest", rasterized=True)
    extent = (np.nanmin(kp), np.nanmax(kp), np.nanmin(kz), np.nanmax(kz))
    if np.all(np.isfinite(extent)):
        phi = np.radians(ds.attrs["azimuth"])
        _zone(ax, crystal, [0, 0, 0], [np.cos(phi), np.sin(phi), 0], [0, 0, 1], extent)
        zs = np.arange(
            np.ceil(extent[2] * crystal["c"] / (2 * np.pi)), extent[3] * crystal["c"] / (2 * np.pi)
        )
        for n in zs:
            ax.annotate(
                "Γ" if n % 2 == 0 else "Z",
                (0, n * 2 * np.pi / crystal["c"]),
                color="w",
                ha="center",
                va="center",
            )
    ax.set(
        xlabel="k∥ (Å⁻¹)",
        ylabel="kz (Å⁻¹)",
        title=f"k∥–kz map at E_F (V0 = {ds.attrs['inner_potential']:.1f} eV)",
    )
    ax.grid(False)
    return fig


def simulated(truth: dict | None, band: str, part: str):
    """The simulation's truth for one band and measurement, or None for measured data."""
    return ((truth or {}).get("bands") or {}).get(band, {}).get(part)


def kf_vs_kz(kf, truth, crystal):
    """k_F against kz per band: flat for the quasi-2D X band, periodic for the Z pockets."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    names = list(dict.fromkeys(kf["band"]))
    for b in names:
        g = kf[kf["band"] == b]
        ax.errorbar(
            g["kz"],
            g["k_F"],
            yerr=g["k_F_err"],
            fmt="o",
            ms=3,
            color=_color(b, names),
            label=_label(b) + " (fit)",
        )
        t = simulated(truth, b, "hv_scan")
        if t is None:
            continue  # own data: nothing to compare with
        ax.plot(
            np.array([r["kz"] for r in t], dtype=float),  # null (no crossing) -> NaN
            np.array([r["k_F"] for r in t], dtype=float),
            "-",
            color=_color(b, names),
            lw=1,
            alpha=0.6,
            label=_label(b) + " (truth)",
        )
    lo, hi = ax.get_xlim()
    for n in np.arange(np.ceil(lo * crystal["c"] / (2 * np.pi)), hi * crystal["c"] / (2 * np.pi)):
        ax.axvline(n * 2 * np.pi / crystal["c"], color="gray", lw=0.6, ls=":")
        ax.annotate(
            "Γ" if n % 2 == 0 else "Z",
            (n * 2 * np.pi / crystal["c"], 0.97),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="top",
        )
    ax.set(xlabel="kz (Å⁻¹)", ylabel="k_F from pocket centre (Å⁻¹)", title="k_F against kz")
    ax.legend(fontsize="x-small")
    return fig


def _example_rows(df, n=3):
    ok = df[df["fit_ok"]]
    return ok.iloc[np.linspace(0, len(ok) - 1, n).astype(int)] if len(ok) >= n else ok


def cuts(spectra, mdc, edc, bands, crystal):
    """The cut in (k, E) with MDC and EDC peak positions, and example MDC and EDC fits."""
    ck = spectra["intensity"]
    k, e = ck["k"].values, ck["energy"].values
    fig = plt.figure(figsize=(4 + 3 * len(bands), 4.2))
    grid = fig.add_gridspec(2, 1 + len(bands), width_ratios=[1.6] + [1] * len(bands))
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(
        ck.values,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        interpolation="nearest",
        extent=[k[0], k[-1], e[0], e[-1]],
    )  # both axes are uniform grids
    ax.grid(False)
    for b in bands:
        m, d = mdc[mdc["band"] == b], edc[edc["band"] == b]
        ax.plot(
            m["k"], m["energy"], ".", ms=2, color=_color(b, bands), label=f"{b.upper()}: MDC peaks"
        )
        centre = band_center(crystal, bands[b]["center"], ck.attrs["azimuth"])
        ax.plot(
            centre + d["branch"] * d["q"],
            d["energy"],
            "x",
            ms=3,
            color=_color(b, bands),
            label=f"{b.upper()}: EDC peaks",
        )
    ax.set(
        xlabel="k along the cut (Å⁻¹)",
        ylabel="E − E_F (eV)",
        title=f"cut at hν = {ck.attrs['hv']:g} eV",
    )
    ax.legend(fontsize="x-small", loc="lower left")
    for col, b in enumerate(bands, start=1):
        a = fig.add_subplot(grid[0, col])
        m = mdc[(mdc["band"] == b) & (mdc["branch"] == bands[b]["branches"][0])]
        for _, r in _example_rows(m).iterrows():  # fits were on sums of n_summed rows
            x = np.linspace(r["k"] - 6 * r["hwhm"], r["k"] + 6 * r["hwhm"], 200)
            sel = (k > x[0]) & (k < x[-1])
            data = ck.sel(energy=r["energy"], method="nearest").values[sel] * r["n_summed"]
            a.plot(k[sel], data, ".", ms=2, color="gray")
            fit = peak_on_line(x, r["k"], r["hwhm"], r["amplitude"], r["offset"], r["slope"])
            a.plot(x, fit, color=_color(b, bands), lw=1)
        a.set(title=f"{b.upper()}: MDC fits", xlabel="k (Å⁻¹)")
        a = fig.add_subplot(grid[1, col])
        d = edc[edc["band"] == b]
        model = edc_model(ck.attrs["temperature"], ck.attrs["energy_resolution"])
        centre = band_center(crystal, bands[b]["center"], ck.attrs["azimuth"])
        for _, r in _example_rows(d).iterrows():  # fits were on sums of n_summed columns
            col_k = np.argmin(np.abs(k - (centre + r["branch"] * r["q"])))
            a.plot(e, ck.values[:, col_k] * r["n_summed"], ".", ms=2, color="gray")
            x = e[(e > -0.05) & (e < 0.02)]
            fit = model(x, r["energy"], r["hwhm"], r["amplitude"], r["offset"], r["slope"])
            a.plot(x, fit, color=_color(b, bands), lw=1)
        a.set(title=f"{b.upper()}: EDC fits", xlabel="E − E_F (eV)", xlim=(-0.05, 0.02))
    fig.tight_layout()
    return fig


def edcs(spectra, edc, bands, crystal):
    """EDCs divided by the resolution-broadened Fermi–Dirac function: the flat f band just
    above and below E_F."""
    div = spectra["fd_divided"]
    k, e = div["k"].values, div["energy"].values
    fig, axes = plt.subplots(1, len(bands), figsize=(4 * len(bands), 4.5), squeeze=False)
    for ax, b in zip(axes[0], bands, strict=True):
        d = edc[(edc["band"] == b) & (edc["branch"] == bands[b]["branches"][0])]
        centre = band_center(crystal, bands[b]["center"], div.attrs["azimuth"])
        keep = (e > -0.06) & np.isfinite(div.values).any(axis=1)
        curves = [
            div.values[keep, np.argmin(np.abs(k - (centre + r.branch * r.q)))]
            for r in d.itertuples()
        ]
        for i, (curve, r) in enumerate(zip(curves, d.itertuples(), strict=True)):
            top = np.nanmax(curve) if np.isfinite(curve).any() else 0
            curve = curve / (top if top > 0 else 1) + 0.3 * i  # each normalised, offset by q
            ax.plot(e[keep], curve, color=_color(b, bands), lw=0.7)
            if r.fit_ok:
                ax.plot([r.energy], [np.interp(r.energy, e[keep], curve)], "k|", ms=6)
        ax.axvline(0, color="gray", lw=0.6, ls=":")
        ax.set(
            title=f"{b.upper()}: FD-divided EDCs",
            xlabel="E − E_F (eV)",
            ylabel="intensity / f(E), normalised (q increases upwards)",
            yticks=[],
        )
    fig.tight_layout()
    return fig


def hybridisation(mdc, edc, fits, truth):
    """Measured dispersion (MDC and EDC peaks) with the fitted E−(q), per band."""
    names = list(fits["band"])
    fig, axes = plt.subplots(
        2, len(names), figsize=(4.25 * len(names), 6), sharex="col", squeeze=False
    )
    fits = fits.set_index("band")
    for col, b in enumerate(names):
        m, d = mdc[mdc["band"] == b], edc[edc["band"] == b]
        f = fits.loc[b]
        q_all = np.concatenate([m["q"].dropna(), d["q"].dropna()])
        q = np.linspace(*(np.nanpercentile(q_all, [0, 100]) if len(q_all) else (0, 1)), 300)
        true_cut = simulated(truth, b, "cut")
        for row, ylim in enumerate([(-0.2, 0.01), (-0.03, 0.01)]):
            ax = axes[row, col]
            ax.plot(m["q"], m["energy"], ".", ms=2, color=_color(b, names), label="MDC peaks")
            ax.errorbar(
                d["q"],
                d["energy"],
                yerr=d["energy_err"],
                fmt="x",
                ms=3,
                color="k",
                label="EDC peaks",
            )
            if f["fit_ok"]:
                p = [f[n] for n in ("e0", "b", "V", "eps_f")] + [f.get("c4", 0.0)]
                ax.plot(q, lower_band(q, *p), color="C2", lw=1.2, label="E−(q), fit of the counts")
                eps_c = p[0] + p[1] * q**2 + p[4] * q**4
                ax.plot(q, eps_c, "--", color="gray", lw=0.8, label="ε_c (fit)")
                ax.axhline(p[3], color="C1", ls=":", lw=0.8, label="ε_f (fit)")
            if true_cut is not None and true_cut["k_F"] is not None:
                ax.axvline(true_cut["k_F"], color="k", ls=":", lw=0.6, label="k_F (truth)")
            ax.axhline(0, color="gray", lw=0.5)
            ax.set(ylim=ylim, ylabel="E − E_F (eV)")
        title = _label(b)
        if f["fit_ok"]:
            title += (
                f"\nV = {1e3 * f['V']:.1f} ± {1e3 * f['V_err']:.1f} meV, "
                f"ε_f = {1e3 * f['eps_f']:.2f} ± {1e3 * f['eps_f_err']:.2f} meV,\n"
                f"m*/m_e = {f['m_star']:.1f} ± {f['m_star_err']:.1f}"
            )
        else:
            title += "\nhybridisation fit failed"
        axes[0, col].set_title(title, fontsize="small")
        axes[1, col].set_xlabel("q from the pocket centre (Å⁻¹)")
    axes[0, 0].legend(fontsize="x-small", loc="lower right")
    fig.tight_layout()
    return fig
