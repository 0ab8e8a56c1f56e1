/** Small look-ups the storage tests share. */
import assert from "assert";
import { Replica } from "./orthanc";

/** The DICOMweb root the replica's configuration names. */
export const dicomWebRootOf = (replica: Replica): string => (replica.config.DicomWeb as { Root: string }).Root;

/** Orthanc's id of the instance with SOP Instance UID `sopInstanceUid` (POST /tools/lookup); fails when unknown. */
export async function instanceIdOf(replica: Replica, sopInstanceUid: string): Promise<string> {
    const response = await replica.request("/tools/lookup", { method: "POST", body: sopInstanceUid });
    assert.strictEqual(response.status, 200);
    const found = ((await response.json()) as { ID: string; Type: string }[]).find((entry) => entry.Type === "Instance");
    assert.ok(found, `replica ${replica.name} does not know SOP instance ${sopInstanceUid}`);
    return found.ID;
}
