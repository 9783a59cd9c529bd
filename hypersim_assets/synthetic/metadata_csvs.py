"""The mirror's metadata CSVs: the three upstream files' columns, real camera-parameter rows
to draw from, the exclusion reasons and scene types upstream uses, and the CSV encoding
(comma-separated, ``\\n`` line ends) shared with the per-scene ``_detail`` CSVs.
"""

from __future__ import annotations

import csv
import io

import numpy as np

# Column names of the three upstream metadata files (facts; the project never reads the real files at run time).
SPLIT_COLUMNS: tuple[str, ...] = (
    "scene_name",
    "camera_name",
    "frame_id",
    "included_in_public_release",
    "exclude_reason",
    "split_partition_name",
)
TRAJECTORY_COLUMNS: tuple[str, ...] = (
    "Animation",
    "Rendering job (geometry)",
    "Instance type (geometry)",
    "Rendering job (pre)",
    "Instance type (pre)",
    "Rendering job (final)",
    "Instance type (final)",
    "Scene type",
    "Notes",
    "Any good views of scene?",
)
CAMERA_PARAMETER_COLUMNS: tuple[str, ...] = (
    "scene_name",
    "settings_output_img_height",
    "settings_output_img_width",
    "settings_units_info_meters_scale",
    "use_camera_physical",
    "camera_physical_anisotropy",
    "camera_physical_blades_enable",
    "camera_physical_blades_num",
    "camera_physical_blades_rotation",
    "camera_physical_bmpaperture_affects_exposure",
    "camera_physical_bmpaperture_enable",
    "camera_physical_bmpaperture_resolution",
    "camera_physical_bmpaperture_tex",
    "camera_physical_center_bias",
    "camera_physical_distortion",
    "camera_physical_distortion_tex",
    "camera_physical_distortion_type",
    "camera_physical_dof_display_threshold",
    "camera_physical_dont_affect_settings",
    "camera_physical_enable_thin_lens_equation",
    "camera_physical_exposure",
    "camera_physical_f_number",
    "camera_physical_film_width",
    "camera_physical_focal_length",
    "camera_physical_focus_distance",
    "camera_physical_fov",
    "camera_physical_horizontal_offset",
    "camera_physical_horizontal_shift",
    "camera_physical_ISO",
    "camera_physical_latency",
    "camera_physical_lens_file",
    "camera_physical_lens_shift",
    "camera_physical_optical_vignetting",
    "camera_physical_rolling_shutter_duration",
    "camera_physical_rolling_shutter_mode",
    "camera_physical_shutter_angle",
    "camera_physical_shutter_offset",
    "camera_physical_shutter_speed",
    "camera_physical_specify_focus",
    "camera_physical_specify_fov",
    "camera_physical_subdivs",
    "camera_physical_target_distance",
    "camera_physical_targeted",
    "camera_physical_type",
    "camera_physical_use_dof",
    "camera_physical_use_moblur",
    "camera_physical_vertical_offset",
    "camera_physical_vignetting",
    "camera_physical_white_balance",
    "camera_physical_zoom_factor",
    "settings_camera_auto_corrections_mode",
    "settings_camera_auto_exposure",
    "settings_camera_auto_exposure_compensation",
    "settings_camera_auto_fit",
    "settings_camera_auto_white_balance",
    "settings_camera_curve",
    "settings_camera_dist",
    "settings_camera_dont_affect_settings",
    "settings_camera_fov",
    "settings_camera_height",
    "settings_camera_image_planes",
    "settings_camera_type",
    "M_cam_from_uv_00",
    "M_cam_from_uv_01",
    "M_cam_from_uv_02",
    "M_cam_from_uv_10",
    "M_cam_from_uv_11",
    "M_cam_from_uv_12",
    "M_cam_from_uv_20",
    "M_cam_from_uv_21",
    "M_cam_from_uv_22",
    "M_proj_00",
    "M_proj_01",
    "M_proj_02",
    "M_proj_03",
    "M_proj_10",
    "M_proj_11",
    "M_proj_12",
    "M_proj_13",
    "M_proj_20",
    "M_proj_21",
    "M_proj_22",
    "M_proj_23",
    "M_proj_30",
    "M_proj_31",
    "M_proj_32",
    "M_proj_33",
)

# Real rows of metadata_camera_parameters.csv (upstream facts), keyed by scene: five tilt-shift cameras
# (M_cam_from_uv_02 or _12 non-zero) and one plain pinhole camera (ai_001_001).
REAL_CAMERA_ROWS: dict[str, str] = {
    "ai_001_001": (
        "ai_001_001,768.0,1024.0,0.02539999969303608,False,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,1.0,0"
        ".0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,400.0,,0.0,0.5773502886169104,0.0,0.0,0.0,0.43301271"
        "64626828,0.0,0.0,0.0,-1.0,1.7320507492870254,0.0,0.0,0.0,0.0,2.309400999049367,0.0,0.0,0.0,0.0,-1.00"
        "2002002002002,-2.002002002002002,0.0,0.0,-1.0,0.0"
    ),
    "ai_021_002": (
        'ai_021_002,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,8.15835189819336,36.3498382568'
        "3594,24.0506591796875,200.0,1.0471975803375244,0.029999999329447746,0.0,100.0,0.0,,-0.07169818878173"
        "828,0.0,200.0,0.0,180.0,0.0,100.0,0.0,1.0,6.0,656.152099609375,1.0,0.0,0.0,0.0,-0.3000001013278961,0"
        '.800000011920929,"Color(0.854902, 0.862745, 1)",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.047197580337'
        "5244,400.0,,0.0,0.5921100334279958,0.0,-0.03552660121159832,0.0,0.44294547502683684,0.35435649970875"
        "766,-0.0,0.03175838828849088,-1.0255646263489975,1.6888752825391975,0.004093252636162593,-0.05709004"
        "2380612493,0.0,0.0,2.203037491520368,0.761200839191837,0.0,0.0,0.06835745713015638,-0.95340563397282"
        "4,-2.002002002002002,0.0,0.068220878794232,-0.9515007276112399,0.0"
    ),
    "ai_023_002": (
        'ai_023_002,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,2.799999952316284,35.0,9.85734'
        "6534729004,200.0,1.0471975803375244,0.03999999165534973,0.0,100.0,0.0,,0.0,0.0,200.0,0.0,180.0,0.0,1"
        '0.0,0.0,1.0,6.0,386.3528137207031,1.0,0.0,0.0,0.0,-0.03999999910593033,1.0,"Color(1, 1, 1)",2.807800'
        "054550171,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,400.0,,0.0,0.5781714089953494,0.0,-0."
        "046253703070351544,0.0,0.433628556746512,0.04625371168577691,-0.0,-0.0,-1.0014222216378865,1.7295908"
        "867884606,0.0,-0.07988636719070868,0.0,0.0,2.3061211823846137,0.10651517609427631,0.0,0.0,0.0,-1.000"
        "578956959001,-2.002002002002002,0.0,0.0,-0.9985797982038381,0.0"
    ),
    "ai_031_003": (
        'ai_031_003,768.0,1024.0,0.0010000000474974513,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)"'
        ',0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,3.0,36.0,19.0,200.0,1.0471975'
        "803375244,0.009999999776482582,-0.009999999776482582,220.0,0.0,,0.045276109129190445,0.0,200.0,0.0,1"
        '80.0,0.0,40.0,0.0,1.0,6.0,1227.552001953125,1.0,0.0,0.0,0.0,0.029999999329447746,0.0,"Color(1, 1, 1)'
        '",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,400.0,,0.0,0.5776646382069178,0.0,-0.0115'
        "53292505902141,0.0,0.43282673625418516,-0.034626138126380296,0.0057766462529510705,-0.01959671054467"
        "582,-1.000462281817734,1.7313078315878465,-0.0009037918657376548,-0.01996178300478036,0.0,0.00079847"
        "13023439895,2.3067781521695316,-0.07984713201912141,0.0,0.01000087326715973,-0.04528006395520103,-1."
        "000087349069667,-2.002002002002002,0.00998089150239018,-0.04518959429694888,-0.9980891725480493,0.0"
    ),
    "ai_036_008": (
        'ai_036_008,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,8.0,36.0,29.623310089111328,20'
        "0.0,1.0471975803375244,-0.17299999296665192,0.0,220.0,0.0,,0.0,0.0,200.0,0.0,180.0,0.0,100.0,0.0,1.0"
        ',1.0,386.43121337890625,0.0,0.0,0.0,0.0,0.0,0.0,"Color(1, 1, 1)",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,Fal'
        "se,1.0471975803375244,90.0,,0.0,0.5850300735540572,0.0,0.20242039722026353,0.0,0.4387725551655429,-0"
        ".0,-0.0,-0.0,-1.013301778214287,1.709313837363951,0.0,0.3414579875138972,0.0,0.0,2.2790851164852675,"
        "0.0,0.0,0.0,0.0,-0.9888485577986469,-2.002002002002002,0.0,0.0,-0.9868728364044438,0.0"
    ),
    "ai_037_002": (
        'ai_037_002,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,2.5,36.0,32.0,490.0,1.04719758'
        "03375244,0.05999999865889549,0.0,100.0,0.0,,-0.009326552972197533,0.0,200.0,0.0,180.0,0.0,200.0,1.0,"
        '1.0,1.0,443.59698486328125,1.0,0.0,0.0,0.0,-0.07999999821186066,0.6000000238418579,"Color(0.941176, '
        '1, 0.945098)",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,90.0,,0.0,0.579607251426182,0'
        ".0,-0.06955286861651404,0.0,0.4346865334657201,0.09273312506660672,-0.0,0.004054126980668954,-1.0039"
        "09173803896,1.7253062268275619,0.001113868662274642,-0.11942983282195321,0.0,0.0,2.2985281393428907,"
        "0.21231970279458348,0.0,0.0,0.009300822120943601,-0.9972411188430887,-2.002002002002002,0.0,0.009282"
        "239059762895,-0.9952486290951505,0.0"
    ),
}

# Values seen in the real files.
SCENE_TYPES: tuple[str, ...] = (
    "Living room",
    "Kitchen",
    "Bedroom",
    "Bathroom",
    "Office",
    "Dining room",
    "Restaurant",
    "Hotel lobby",
)
REASON_CONTENT_FLAGGED = "CONTENT FLAGGED FOR REMOVAL"
REASON_BAD_TRAJECTORY = "OUTSIDE VIEWING AREA (BAD TRAJECTORY)"


def csv_bytes(columns: tuple[str, ...] | list[str], rows: list[list[object]]) -> bytes:
    """A CSV file (header row, then ``rows``) as UTF-8 bytes with ``\\n`` line ends."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue().encode()


def camera_row_fields(row: str) -> dict[str, str]:
    """One embedded camera-parameters row as ``{column: text}``."""
    values = next(csv.reader([row]))
    if len(values) != len(CAMERA_PARAMETER_COLUMNS):
        raise ValueError(f"embedded camera row has {len(values)} fields, expected {len(CAMERA_PARAMETER_COLUMNS)}")
    return dict(zip(CAMERA_PARAMETER_COLUMNS, values))


def is_tilt_shift(fields: dict[str, str]) -> bool:
    """True if a camera-parameters row has an off-centre projection (M_cam_from_uv_02 or _12 non-zero)."""
    return float(fields["M_cam_from_uv_02"]) != 0.0 or float(fields["M_cam_from_uv_12"]) != 0.0


def m_cam_from_uv(fields: dict[str, str]) -> np.ndarray:
    """The 3x3 ``M_cam_from_uv`` of a camera-parameters row."""
    return np.array([[float(fields[f"M_cam_from_uv_{r}{c}"]) for c in range(3)] for r in range(3)])


def split_rows(
    names: list[str],
    cameras: tuple[str, ...],
    frames: int,
    excluded: dict[tuple[str, str, int], str],
    split_of: dict[str, str],
) -> list[list[object]]:
    """Rows of ``metadata_images_split_scene_v1.csv``: one per (scene, camera, frame)."""
    rows: list[list[object]] = []
    for s in names:
        for c in cameras:
            for f in range(frames):
                reason = excluded.get((s, c, f))
                rows.append([s, c, f, reason is None, reason or "", "" if reason else split_of[s]])
    return rows


def trajectory_rows(
    names: list[str], cameras: tuple[str, ...], type_of: dict[str, str], bad_trajectory: tuple[str, str] | None
) -> list[list[object]]:
    """Rows of ``metadata_camera_trajectories.csv``; the bad trajectory's scene type is its exclusion reason."""
    rows: list[list[object]] = []
    for s in names:
        for c in cameras:
            scene_type = REASON_BAD_TRAJECTORY if bad_trajectory == (s, c) else type_of[s]
            rows.append(
                [
                    f"{s}_{c}",
                    f"{s}@scene_{c}_geometry",
                    "large",
                    f"{s}@scene_{c}_pre",
                    "2xlarge",
                    f"{s}@scene_{c}_final",
                    "9xlarge",
                    scene_type,
                    "",
                    "",
                ]
            )
    return rows


def camera_parameter_rows(row_of: dict[str, str], height: int, width: int) -> list[list[object]]:
    """Rows of ``metadata_camera_parameters.csv``: each scene's real source row, renamed and resized."""
    rows: list[list[object]] = []
    for s, source in row_of.items():
        fields = camera_row_fields(REAL_CAMERA_ROWS[source])
        fields.update(
            scene_name=s,
            settings_output_img_height=repr(float(height)),
            settings_output_img_width=repr(float(width)),
        )
        rows.append([fields[c] for c in CAMERA_PARAMETER_COLUMNS])
    return rows
